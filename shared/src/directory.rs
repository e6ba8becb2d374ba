//! The optional user directory: which addresses have an account, asked by `/auth/request-otp`
//! before it sends (the seed service answered `404 User not found` for the others). A list for
//! local runs and tests, or a DynamoDB table keyed by the normalised address (`email`, S); the
//! lookup is the one read a send may make besides the store's own request.

use std::collections::HashSet;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::UserId;
use crate::store::StoreError;

/// The key attribute of a directory table.
pub const ADDRESS_ATTRIBUTE: &str = "email";

#[async_trait]
pub trait UserDirectory: Send + Sync {
    /// Whether `user` (a lower-cased address) has an account.
    async fn knows(&self, user: &UserId) -> Result<bool, StoreError>;

    /// For the start-up line.
    fn describe(&self) -> String;
}

/// A fixed set of addresses.
pub struct ListDirectory(HashSet<UserId>);

impl ListDirectory {
    pub fn new(users: impl IntoIterator<Item = UserId>) -> Self {
        Self(users.into_iter().collect())
    }
}

#[async_trait]
impl UserDirectory for ListDirectory {
    async fn knows(&self, user: &UserId) -> Result<bool, StoreError> {
        Ok(self.0.contains(user))
    }

    fn describe(&self) -> String {
        format!("list of {} addresses", self.0.len())
    }
}

/// A DynamoDB table with one item per known address.
pub struct DynamoDirectory {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDirectory {
    pub fn new(client: aws_sdk_dynamodb::Client, table: String) -> Self {
        Self { client, table }
    }
}

#[async_trait]
impl UserDirectory for DynamoDirectory {
    async fn knows(&self, user: &UserId) -> Result<bool, StoreError> {
        // Eventually consistent: an account created a second ago may be missed once, at half
        // the price of a strongly consistent read. Only the key comes back.
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                ADDRESS_ATTRIBUTE,
                AttributeValue::S(user.as_str().to_owned()),
            )
            .projection_expression("#a")
            .expression_attribute_names("#a", ADDRESS_ATTRIBUTE)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(Box::new(e)))?;
        Ok(output.item.is_some())
    }

    fn describe(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }
}
