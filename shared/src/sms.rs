//! How long an SMS is on the air: GSM 03.38's 7-bit alphabet when every character is in it (160
//! septets in one segment, the extension characters taking two), otherwise UCS-2 (70 UTF-16
//! units). A longer text is split into several segments, each billed: a code must go in one.

/// GSM 03.38's basic character set (the escape to the extension table left out).
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                          ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table: each of these takes an escape and itself, two septets.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// One segment holds this much.
pub const GSM7_SEGMENT: usize = 160;
pub const UCS2_SEGMENT: usize = 70;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// A text's encoding and its length in that encoding's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Length {
    pub encoding: Encoding,
    pub units: usize,
}

impl Length {
    pub fn of(text: &str) -> Self {
        let mut septets = 0;
        for c in text.chars() {
            if GSM7_BASIC.contains(c) {
                septets += 1;
            } else if GSM7_EXTENSION.contains(c) {
                septets += 2;
            } else {
                return Self {
                    encoding: Encoding::Ucs2,
                    units: text.encode_utf16().count(),
                };
            }
        }
        Self {
            encoding: Encoding::Gsm7,
            units: septets,
        }
    }

    /// What one segment of this encoding holds.
    pub fn segment(&self) -> usize {
        match self.encoding {
            Encoding::Gsm7 => GSM7_SEGMENT,
            Encoding::Ucs2 => UCS2_SEGMENT,
        }
    }

    pub fn fits_one_segment(&self) -> bool {
        self.units <= self.segment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_text_counts_septets_and_the_extension_twice() {
        assert_eq!(
            Length::of("Acme: code 123456 @example.com #123456"),
            Length {
                encoding: Encoding::Gsm7,
                units: 38
            }
        );
        assert_eq!(Length::of("Café ÄÖ").units, 7);
        assert_eq!(Length::of("5 €").units, 4);
        assert_eq!(Length::of("[x]").units, 5);
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        assert!(Length::of(&"a".repeat(160)).fits_one_segment());
        assert!(!Length::of(&"a".repeat(161)).fits_one_segment());
    }

    #[test]
    fn anything_outside_the_alphabet_makes_it_ucs2() {
        let polish = Length::of("Kod weryfikacyjny: 123456. Ważny 5 minut.");
        assert_eq!(polish.encoding, Encoding::Ucs2);
        assert_eq!(polish.units, 41);
        assert_eq!(polish.segment(), 70);
        // A character outside the BMP takes two UTF-16 units.
        assert_eq!(Length::of("ok 🔐").units, 5);
        assert!(!Length::of(&"ł".repeat(71)).fits_one_segment());
    }
}
