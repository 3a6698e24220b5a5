//! The bearer token of `--metrics-token-file`: reading the file (it must
//! be private to the daemon's user) and checking what a request shows.

/// Reads the bearer token of `--metrics-token-file`: the file must belong
/// to the user the daemon runs as (root) and give other users no access,
/// and its trimmed content must not be empty. The error is one line.
pub fn read_token(path: &std::path::Path) -> Result<String, String> {
    use std::os::unix::fs::MetadataExt;
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("--metrics-token-file {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("--metrics-token-file {shown}: not a regular file"));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!(
            "--metrics-token-file {shown}: owned by uid {}, not by uid {me} that cordon runs as; chown it",
            meta.uid()
        ));
    }
    if meta.mode() & 0o006 != 0 {
        return Err(format!(
            "--metrics-token-file {shown}: mode {:o} lets every user read or change the token; chmod 600 it",
            meta.mode() & 0o7777
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("--metrics-token-file {shown}: {e}"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("--metrics-token-file {shown}: the file is empty"));
    }
    if token.chars().any(|c| c.is_control() || c == ' ') {
        return Err(format!(
            "--metrics-token-file {shown}: the token must be one word of printable characters"
        ));
    }
    Ok(token.to_string())
}

/// Compares in time that depends on the lengths only, not on where the
/// first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// True when one of `authorization` (the values of a request's
/// `Authorization` headers) is `Bearer <token>` (the scheme in any case,
/// blanks around the token ignored).
pub(super) fn authorized<'a>(
    authorization: impl IntoIterator<Item = &'a [u8]>,
    token: &str,
) -> bool {
    authorization.into_iter().any(|v| {
        v.len() > 7
            && v[..7].eq_ignore_ascii_case(b"bearer ")
            && same_secret(v[7..].trim_ascii(), token.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_compared_whole() {
        let h = |v: &'static [u8]| v;
        assert!(authorized([h(b"Bearer s3cret")], "s3cret"));
        assert!(authorized([h(b"bearer s3cret ")], "s3cret"));
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cretX",
            b"Bearer ",
            b"Basic s3cret",
            b"s3cret",
            b"",
        ] {
            assert!(!authorized([h(bad)], "s3cret"), "{bad:?}");
        }
        assert!(!authorized([], "s3cret"));
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[test]
    fn the_token_file_must_be_private_and_not_empty() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cordon-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("token");
        std::fs::write(&f, "  s3cret\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&f).unwrap(), "s3cret");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token(&f).unwrap_err();
        assert!(e.contains("mode 644") && !e.contains('\n'), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o602)).unwrap();
        assert!(read_token(&f).is_err());
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(&f, "\n").unwrap();
        assert!(read_token(&f).unwrap_err().contains("empty"));
        assert!(read_token(&dir.join("missing")).is_err());
        if cordon_dataplane::is_root() {
            std::fs::write(&f, "s3cret").unwrap();
            std::os::unix::fs::chown(&f, Some(65534), None).unwrap();
            let e = read_token(&f).unwrap_err();
            assert!(e.contains("owned by uid 65534"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
