//! The CloudWatch Embedded Metric Format specification as a checker, and the service's own rule
//! that every record names a metric of the catalogue with exactly its dimensions and unit.
//! (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)

use std::collections::BTreeMap;

use otp_core::meter::CATALOGUE;
use serde_json::{Map, Value};

/// The units a MetricDefinition may name (CloudWatch's `StandardUnit`).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

fn only_members(object: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(extra) => Err(format!(
            "{what} has a member the specification does not define: {extra}"
        )),
        None => Ok(()),
    }
}

/// One record checked against the specification; `Err` says which rule it breaks.
pub fn check_spec(record: &Value) -> Result<(), String> {
    let root = record.as_object().ok_or("a record is a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("_aws is required and is an object")?;
    only_members(aws, &["Timestamp", "CloudWatchMetrics"], "_aws")?;
    aws.get("Timestamp")
        .and_then(Value::as_u64)
        .filter(|ms| *ms > 1_000_000_000_000)
        .ok_or("_aws.Timestamp is required: milliseconds since the epoch")?;
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .ok_or("_aws.CloudWatchMetrics is required and is an array")?;
    for directive in directives {
        let directive = directive
            .as_object()
            .ok_or("a MetricDirective is an object")?;
        only_members(
            directive,
            &["Namespace", "Dimensions", "Metrics"],
            "MetricDirective",
        )?;
        let namespace = directive
            .get("Namespace")
            .and_then(Value::as_str)
            .ok_or("Namespace is required and is a string")?;
        if namespace.is_empty() || namespace.len() > 255 {
            return Err(format!(
                "Namespace must be 1 to 255 characters: {namespace:?}"
            ));
        }
        let sets = directive
            .get("Dimensions")
            .and_then(Value::as_array)
            .ok_or("Dimensions is required and is an array of DimensionSets")?;
        for set in sets {
            let set = set.as_array().ok_or("a DimensionSet is an array")?;
            if set.len() > 30 {
                return Err(format!("a DimensionSet has {} keys; at most 30", set.len()));
            }
            for key in set {
                let key = key.as_str().ok_or("a dimension key is a string")?;
                let value = root.get(key).and_then(Value::as_str).ok_or(format!(
                    "dimension {key} must be a string member of the root"
                ))?;
                if key.is_empty() || key.len() > 250 || value.is_empty() || value.len() > 1024 {
                    return Err(format!(
                        "dimension {key}={value:?} is out of the allowed sizes"
                    ));
                }
            }
        }
        let metrics = directive
            .get("Metrics")
            .and_then(Value::as_array)
            .ok_or("Metrics is required and is an array")?;
        if metrics.len() > 100 {
            return Err(format!("{} MetricDefinitions; at most 100", metrics.len()));
        }
        for definition in metrics {
            let definition = definition
                .as_object()
                .ok_or("a MetricDefinition is an object")?;
            only_members(
                definition,
                &["Name", "Unit", "StorageResolution"],
                "MetricDefinition",
            )?;
            let name = definition
                .get("Name")
                .and_then(Value::as_str)
                .ok_or("MetricDefinition.Name is required and is a string")?;
            if let Some(unit) = definition.get("Unit") {
                if !unit.as_str().is_some_and(|u| UNITS.contains(&u)) {
                    return Err(format!("{name}: Unit {unit} is not a CloudWatch unit"));
                }
            }
            if let Some(resolution) = definition.get("StorageResolution") {
                if !matches!(resolution.as_u64(), Some(1 | 60)) {
                    return Err(format!("{name}: StorageResolution must be 1 or 60"));
                }
            }
            match root.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values)) if values.iter().all(Value::is_number) => {
                    if values.is_empty() || values.len() > 100 {
                        return Err(format!("{name}: {} values; 1 to 100", values.len()));
                    }
                }
                other => return Err(format!("{name} must be a number member, got {other:?}")),
            }
        }
    }
    Ok(())
}

/// A metric as a record states it: name and dimension values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Figure {
    pub name: String,
    pub dimensions: BTreeMap<String, String>,
    /// The sum of the record's values for it.
    pub total: u64,
}

/// Checks a record against the specification and the catalogue, and returns its figures.
pub fn check_record(record: &Value, namespace: &str) -> Result<Vec<Figure>, String> {
    check_spec(record)?;
    let directive = &record["_aws"]["CloudWatchMetrics"][0];
    if directive["Namespace"] != namespace {
        return Err(format!(
            "namespace {} instead of {namespace}",
            directive["Namespace"]
        ));
    }
    let keys: Vec<&str> = directive["Dimensions"][0]
        .as_array()
        .ok_or("a dimension set")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut figures = Vec::new();
    for definition in directive["Metrics"].as_array().ok_or("metrics")? {
        let name = definition["Name"].as_str().unwrap_or_default();
        let spec = CATALOGUE
            .iter()
            .find(|spec| spec.name == name)
            .ok_or(format!("{name} is not in the catalogue"))?;
        let mut wanted: Vec<&str> = spec.dimensions.to_vec();
        let mut have = keys.clone();
        wanted.sort_unstable();
        have.sort_unstable();
        if wanted != have {
            return Err(format!(
                "{name} has dimensions {have:?}, the catalogue says {wanted:?}"
            ));
        }
        if definition["Unit"] != spec.unit {
            return Err(format!(
                "{name} has unit {}, the catalogue says {}",
                definition["Unit"], spec.unit
            ));
        }
        let total = match &record[name] {
            Value::Array(values) => values.len() as u64,
            value => value.as_f64().unwrap_or_default() as u64,
        };
        figures.push(Figure {
            name: name.to_owned(),
            dimensions: keys
                .iter()
                .map(|k| {
                    (
                        (*k).to_owned(),
                        record[*k].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            total,
        });
    }
    Ok(figures)
}

/// Every EMF line of `output` (other lines are skipped), checked; panics on a bad record.
pub fn figures_in(output: &str, namespace: &str) -> Vec<Figure> {
    output
        .lines()
        .filter(|line| line.contains("\"_aws\""))
        .flat_map(|line| {
            let record: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("an EMF line is JSON ({e}): {line}"));
            check_record(&record, namespace).unwrap_or_else(|e| panic!("{e}: {line}"))
        })
        .collect()
}

#[test]
fn the_checker_refuses_what_the_specification_forbids() {
    let good = serde_json::json!({
        "_aws": {"Timestamp": 1_800_000_000_000u64, "CloudWatchMetrics": [{
            "Namespace": "OtpService", "Dimensions": [["Outcome"]],
            "Metrics": [{"Name": "Verifications", "Unit": "Count"}]}]},
        "Outcome": "verified", "Verifications": 1
    });
    assert_eq!(check_spec(&good), Ok(()));
    assert!(check_record(&good, "OtpService").is_ok());
    let broken = |change: &dyn Fn(&mut Value)| {
        let mut record = good.clone();
        change(&mut record);
        check_spec(&record).is_err() || check_record(&record, "OtpService").is_err()
    };
    assert!(broken(&|r| r["_aws"]["Timestamp"] = "now".into()));
    assert!(broken(&|r| r
        .as_object_mut()
        .unwrap()
        .remove("_aws")
        .map(drop)
        .unwrap()));
    assert!(broken(&|r| r["Verifications"] = "one".into()));
    assert!(broken(&|r| r
        .as_object_mut()
        .unwrap()
        .remove("Outcome")
        .map(drop)
        .unwrap()));
    assert!(broken(
        &|r| r["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Pints".into()
    ));
    assert!(broken(
        &|r| r["_aws"]["CloudWatchMetrics"][0]["Namespace"] = "".into()
    ));
    assert!(broken(
        &|r| r["_aws"]["CloudWatchMetrics"][0]["Extra"] = 1.into()
    ));
    assert!(broken(
        &|r| r["Verifications"] = Value::Array(vec![1.into(); 101])
    ));
    assert!(broken(&|r| {
        let many: Vec<Value> = (0..101)
            .map(|i| serde_json::json!({"Name": format!("M{i}")}))
            .collect();
        r["_aws"]["CloudWatchMetrics"][0]["Metrics"] = Value::Array(many);
    }));
    // The service's own rules: a known metric, its dimensions, its unit, its namespace.
    assert!(broken(
        &|r| r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = serde_json::json!([[]])
    ));
    assert!(broken(
        &|r| r["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = "Seconds".into()
    ));
    assert!(check_record(&good, "Other").is_err());
}
