//! Incremental UTF-8 validation for text messages that arrive in pieces.
//!
//! A message is assembled contiguously, so the validator only remembers how
//! far it has checked. A character cut by a fragment or read boundary (at most
//! 3 bytes) is checked again once the rest arrives. A byte that can never
//! start or continue a valid sequence fails at once, not at the end of the
//! message: RFC 6455 §8.1 asks an endpoint to fail on invalid data "as soon
//! as" it sees it, and Autobahn 6.4.x checks that.

use super::error::ProtocolError;

/// How far a growing text message has been validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Utf8Validator {
    /// Bytes known to be whole, valid characters.
    checked: usize,
}

impl Utf8Validator {
    /// Validates the bytes of `msg` (the whole message so far) not yet checked.
    ///
    /// `Ok` means `msg` is valid UTF-8 or a valid prefix of it (an incomplete
    /// last character is allowed). Equivalent to checking that some bytes can
    /// be appended to `msg` to make it valid UTF-8.
    pub fn advance(&mut self, msg: &[u8]) -> Result<(), ProtocolError> {
        let rest = msg.get(self.checked..).unwrap_or_default();
        match std::str::from_utf8(rest) {
            Ok(_) => {
                self.checked = msg.len();
                Ok(())
            }
            // `error_len() == None`: the input ended inside a character that
            // is valid so far.
            Err(e) if e.error_len().is_none() => {
                self.checked += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(ProtocolError::InvalidUtf8),
        }
    }

    /// Checks that a message of `len` bytes, all passed to [`advance`], does
    /// not end inside a character.
    ///
    /// [`advance`]: Utf8Validator::advance
    pub fn finish(&self, len: usize) -> Result<(), ProtocolError> {
        if self.checked == len {
            Ok(())
        } else {
            Err(ProtocolError::InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `msg` split at `cut`, as two pieces of one message.
    fn split_check(msg: &[u8], cut: usize) -> Result<(), ProtocolError> {
        let mut v = Utf8Validator::default();
        v.advance(&msg[..cut])?;
        v.advance(msg)?;
        v.finish(msg.len())
    }

    #[test]
    fn valid_text_split_at_every_byte_passes() {
        let text = "κόσμε, Hello-µ@ßöäüàá-UTF-8!! \u{10FFFF} \u{FFFF} 😀".as_bytes();
        for cut in 0..=text.len() {
            assert_eq!(split_check(text, cut), Ok(()), "cut at {cut}");
        }
    }

    #[test]
    fn invalid_text_split_at_every_byte_fails() {
        let cases: [&[u8]; 5] = [
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"abc\xff",
            b"\xf4\x90\x80\x80",
            b"\xc0\xaf",
            b"ok\xe0\x80\xafx",
        ];
        for text in cases {
            for cut in 0..=text.len() {
                assert_eq!(
                    split_check(text, cut),
                    Err(ProtocolError::InvalidUtf8),
                    "{text:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn truncated_character_fails_only_at_finish() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.advance(b"ab\xe2\x82"), Ok(()));
        assert_eq!(v.finish(4), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn invalid_sequence_fails_before_the_message_ends() {
        // Autobahn 6.4.1: \xf4\x90 can never start a valid character, so
        // the validator fails on the second byte, before any more arrive.
        let mut v = Utf8Validator::default();
        assert_eq!(
            v.advance(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4"),
            Ok(())
        );
        assert_eq!(
            v.advance(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90"),
            Err(ProtocolError::InvalidUtf8)
        );
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Validating in any number of growing pieces agrees with
            /// validating the whole at once.
            #[test]
            fn pieces_agree_with_whole(bytes in prop::collection::vec(prop_oneof![any::<u8>(), 0x80u8..0xC0, Just(b'a')], 0..64), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5)) {
                let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
                points.sort_unstable();
                let mut v = Utf8Validator::default();
                let mut result = Ok(());
                for p in points.into_iter().chain([bytes.len()]) {
                    result = result.and_then(|_| v.advance(&bytes[..p]));
                }
                let result = result.and_then(|_| v.finish(bytes.len()));
                prop_assert_eq!(result.is_ok(), std::str::from_utf8(&bytes).is_ok());
            }
        }
    }
}
