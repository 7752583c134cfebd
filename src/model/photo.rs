//! Contact photos: where a source photo's bytes are, the version that says when it
//! changed without downloading it, and the `contact-sync/photo` marker a copy
//! keeps of the photo written to it.
//!
//! The version comes from what the listings already give: a People photo's `url`
//! (it changes when the photo does) or a Directory user's `thumbnailPhotoEtag`.
//! A copy's marker holds `<version> <bytes hash>`: a run downloads a source photo
//! only when some copy's version differs, and writes it only to the copies whose
//! bytes hash differs.

use serde::{Deserialize, Serialize};

use super::{ClientData, client_data};

/// `clientData` key on contacts: the photo contact-sync last wrote,
/// `<source photo version> <hash of its bytes>`.
pub const MARKER_PHOTO: &str = "contact-sync/photo";

/// The largest photo the emulator takes (and the backends send), in bytes.
/// Google documents no byte limit for `people.updateContactPhoto`; this bound is
/// the emulator's, kept well under the 32 MiB request limit.
pub const MAX_PHOTO_BYTES: usize = 2 << 20;

/// Where a source photo's bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "type")]
pub enum PhotoLocation {
    /// A contact's own photo: the People `Photo.url` of its `CONTACT` source.
    Contact {
        /// The user whose contact it is.
        user: String,
        /// The photo's URL.
        url: String,
    },
    /// A directory user's photo (`users.photos.get`).
    Directory {
        /// The user's immutable id.
        user_id: String,
    },
}

/// A source photo: its version and where its bytes are.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourcePhoto {
    /// Changes whenever the photo does (a hash of its URL or of its etag).
    pub version: String,
    /// Where to download it.
    pub location: PhotoLocation,
}

impl SourcePhoto {
    /// The photo of a source contact, by the URL of its `CONTACT` photo.
    pub fn of_contact(user: &str, url: &str) -> Self {
        Self {
            version: super::short_hash(&["url", url]),
            location: PhotoLocation::Contact { user: user.to_owned(), url: url.to_owned() },
        }
    }

    /// The directory photo of user `id`, by its `thumbnailPhotoEtag`.
    pub fn of_user(id: &str, etag: &str) -> Self {
        Self {
            version: super::short_hash(&["etag", etag]),
            location: PhotoLocation::Directory { user_id: id.to_owned() },
        }
    }
}

/// What a copy's `contact-sync/photo` marker says was written to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhotoMarker {
    /// The source photo's version.
    pub version: String,
    /// [`photo_hash`] of the bytes written.
    pub hash: String,
}

impl PhotoMarker {
    /// The marker of a contact's `clientData`, if it has a well-formed one.
    pub fn of(data: &[ClientData]) -> Option<Self> {
        let (version, hash) = client_data(data, MARKER_PHOTO)?.split_once(' ')?;
        Some(Self { version: version.to_owned(), hash: hash.to_owned() })
    }

    /// The marker as a `clientData` entry.
    pub fn entry(&self) -> ClientData {
        ClientData { key: MARKER_PHOTO.into(), value: format!("{} {}", self.version, self.hash) }
    }
}

/// `data` with its photo marker replaced by `marker` (or removed).
pub fn with_marker(data: &[ClientData], marker: Option<&PhotoMarker>) -> Vec<ClientData> {
    let mut out: Vec<ClientData> = data.iter().filter(|d| d.key != MARKER_PHOTO).cloned().collect();
    out.extend(marker.map(PhotoMarker::entry));
    out
}

/// First 16 hex digits of the SHA-256 of a photo's bytes.
pub fn photo_hash(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(bytes)[..8])
}

/// The image type of `bytes` by their signature: `image/jpeg`, `image/png`, or
/// `None` for anything else (GIF, BMP, TIFF…).
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// Why Google would refuse `bytes` as a contact photo, if it would: only JPEG
/// and PNG, and not larger than [`MAX_PHOTO_BYTES`].
pub fn refusal(bytes: &[u8]) -> Option<String> {
    if image_type(bytes).is_none() {
        return Some("Invalid photo: the photo must be a JPEG or PNG image.".into());
    }
    if bytes.len() > MAX_PHOTO_BYTES {
        return Some(format!(
            "Invalid photo: the photo is {} bytes, more than the {MAX_PHOTO_BYTES} allowed.",
            bytes.len()
        ));
    }
    None
}

/// Decodes base64 in any of the forms Google writes: standard, URL-safe, and the
/// Directory's web-safe form with `*` or `.` for padding.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    let text: String = text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            '*' | '.' => '=',
            c => c,
        })
        .collect();
    STANDARD.decode(&text).or_else(|_| STANDARD_NO_PAD.decode(text.trim_end_matches('='))).ok()
}

/// Standard base64 of `bytes`.
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// URL-safe base64 of `bytes` (the Directory's `photoData`).
pub fn encode_base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_replace_the_old_one() {
        let marker = PhotoMarker { version: "v1".into(), hash: "h1".into() };
        let data =
            with_marker(&[ClientData { key: "other".into(), value: "x".into() }], Some(&marker));
        assert_eq!(PhotoMarker::of(&data), Some(marker));
        let newer = PhotoMarker { version: "v2".into(), hash: "h2".into() };
        let data = with_marker(&data, Some(&newer));
        assert_eq!(data.iter().filter(|d| d.key == MARKER_PHOTO).count(), 1);
        assert_eq!(PhotoMarker::of(&with_marker(&data, None)), None);
        assert_eq!(data[0].key, "other", "other entries are kept");
    }

    #[test]
    fn only_jpeg_and_png_under_the_limit_pass() {
        assert_eq!(refusal(b"\x89PNG\r\n\x1a\nrest"), None);
        assert_eq!(refusal(&[0xFF, 0xD8, 0xFF, 0xE0]), None);
        assert!(refusal(b"GIF89a....").unwrap().contains("JPEG or PNG"));
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(MAX_PHOTO_BYTES + 1, 0);
        assert!(refusal(&big).unwrap().contains("allowed"));
    }

    #[test]
    fn googles_web_safe_base64_decodes() {
        let bytes = vec![0xFB, 0xFF, 0xFE, 0x01];
        assert_eq!(decode_base64(&encode_base64(&bytes)), Some(bytes.clone()));
        assert_eq!(decode_base64(&encode_base64_url(&bytes)), Some(bytes.clone()));
        let web_safe = encode_base64_url(&bytes).replace('=', "*");
        assert_eq!(decode_base64(&web_safe), Some(bytes));
        assert_eq!(decode_base64("not base64!"), None);
    }
}
