//! Files copied into the work directory, as the tar stream the Engine's
//! archive API takes.

use serde::{Deserialize, Serialize};

/// One file to copy into the work directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path relative to the work directory (`src/Main.java`); no `..`.
    pub name: String,
    /// The bytes.
    pub content: Vec<u8>,
    /// Whether the owner may execute it.
    #[serde(default)]
    pub executable: bool,
}

/// Checks a file name: relative, no `..`, no empty components.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != ".." && c != "." && !c.contains('\0'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "file name {name:?} must be a relative path inside the work directory, without `..`"
        ))
    }
}

/// A tar archive of `files`, every entry (and every parent directory)
/// owned by `uid`:`uid`.
pub fn archive(files: &[InputFile], uid: u32) -> Result<Vec<u8>, String> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = std::collections::BTreeSet::new();
    for f in files {
        check_name(&f.name)?;
        let mut parent = String::new();
        for comp in f
            .name
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .unwrap()
            .1
        {
            parent = if parent.is_empty() {
                comp.to_string()
            } else {
                format!("{parent}/{comp}")
            };
            if dirs.insert(parent.clone()) {
                let mut h = header(tar::EntryType::Directory, 0o700, 0, uid);
                b.append_data(&mut h, format!("{parent}/"), std::io::empty())
                    .map_err(|e| e.to_string())?;
            }
        }
        let mode = if f.executable { 0o700 } else { 0o600 };
        let mut h = header(tar::EntryType::Regular, mode, f.content.len() as u64, uid);
        b.append_data(&mut h, &f.name, f.content.as_slice())
            .map_err(|e| format!("cannot archive {}: {e}", f.name))?;
    }
    b.into_inner().map_err(|e| e.to_string())
}

fn header(kind: tar::EntryType, mode: u32, size: u64, uid: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(uid.into());
    h.set_gid(uid.into());
    h.set_mtime(0);
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_inside() {
        assert!(check_name("a/b.txt").is_ok());
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn archive_owns_entries_and_parents() {
        let f = InputFile {
            name: "src/main.py".into(),
            content: b"print(1)".to_vec(),
            executable: true,
        };
        let bytes = archive(&[f], 100_005).unwrap();
        let mut a = tar::Archive::new(bytes.as_slice());
        let got: Vec<(String, u64, u32)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("src/".to_string(), 100_005, 0o700),
                ("src/main.py".to_string(), 100_005, 0o700)
            ]
        );
    }
}
