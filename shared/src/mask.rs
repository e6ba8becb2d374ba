//! Masked forms of personal data for log lines. Logs never hold a full phone number or address.

/// `+14155552671` → `+1******2671`: the country hint and the last four digits stay readable.
pub fn phone(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    if chars.len() <= 6 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..2].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 6))
}

/// `user@example.com` → `u***@example.com`.
pub fn email(raw: &str) -> String {
    match raw.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// A caller's user id may itself be an address or a phone number (the `/auth/*` routes use the
/// address as the id), so anything that looks like one is masked like one.
pub fn user_id(raw: &str) -> String {
    if raw.contains('@') {
        return email(raw);
    }
    let digits = raw.chars().filter(char::is_ascii_digit).count();
    if digits >= 7 {
        return phone(raw);
    }
    raw.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_keeps_prefix_and_last_four() {
        assert_eq!(phone("+12345678901"), "+1******8901");
        assert_eq!(phone("+14155552671"), "+1******2671");
        assert_eq!(phone("+123"), "****");
    }

    #[test]
    fn email_keeps_first_letter_and_domain() {
        assert_eq!(email("user@example.com"), "u***@example.com");
        assert_eq!(email("nope"), "***");
    }

    #[test]
    fn user_ids_that_look_like_contact_data_are_masked() {
        assert_eq!(user_id("alice@example.com"), "a***@example.com");
        assert_eq!(user_id("+14155552671"), "+1******2671");
        assert_eq!(user_id("14155552671"), "14*****2671");
        assert_eq!(user_id("user-42"), "user-42");
    }
}
