//! An image export (`docker save` format, both the legacy layout and the
//! OCI layout) read as a stream: each layer's files that cordon reads
//! (package databases, os-release) are kept, everything else is skipped;
//! then the layers are stacked in the manifest's order with their
//! whiteouts (`.wh.NAME` deletes NAME below, `.wh..wh..opq` empties its
//! directory below). Layers may be plain tars or gzip- or zstd-compressed
//! tars (OCI layouts), told apart by their magic bytes and decompressed as
//! they stream.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

/// Files cordon reads from an image's root filesystem, by path without
/// the leading `/`.
pub const WANTED: [&str; 6] = [
    "etc/os-release",
    "usr/lib/os-release",
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    // Fedora 36 and later: /var/lib/rpm links here.
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
];
/// Files whose presence only is kept (their content is not read): rpm
/// databases in the formats cordon does not read, BerkeleyDB `Packages`
/// (RHEL/CentOS 7 and 8) and ndb `Packages.db` (SUSE).
pub const PRESENT: [&str; 4] = [
    "var/lib/rpm/Packages",
    "var/lib/rpm/Packages.db",
    "usr/lib/sysimage/rpm/Packages",
    "usr/lib/sysimage/rpm/Packages.db",
];
/// Directories whose every file cordon reads (distroless dpkg records).
pub const WANTED_DIRS: [&str; 1] = ["var/lib/dpkg/status.d/"];

/// Largest non-layer entry kept (manifests, configs).
const MAX_META: u64 = 16 << 20;

fn wanted(path: &str) -> bool {
    WANTED.contains(&path) || WANTED_DIRS.iter().any(|d| path.starts_with(d))
}

/// One file kept from a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    /// A regular file's content.
    File(Vec<u8>),
    /// A symlink's target.
    Link(String),
    /// A file of [`PRESENT`]: there, content not kept.
    Present,
}

/// What one layer contributes: kept files and whiteouts.
#[derive(Default, Debug)]
pub struct Layer {
    files: BTreeMap<String, Node>,
    /// Paths deleted by `.wh.NAME`.
    whiteouts: Vec<String>,
    /// Directories made opaque by `.wh..wh..opq` (with a trailing `/`).
    opaque: Vec<String>,
}

/// The files cordon reads from the merged root filesystem.
#[derive(Default, Debug)]
pub struct Rootfs {
    /// Path (no leading `/`) → node.
    pub files: BTreeMap<String, Node>,
}

impl Rootfs {
    /// The content of `path`, following symlinks among the kept files.
    pub fn read(&self, path: &str) -> Option<&[u8]> {
        let mut path = path.trim_start_matches('/').to_string();
        for _ in 0..8 {
            match self.files.get(&path)? {
                Node::File(data) => return Some(data),
                Node::Link(target) => path = resolve(&path, target),
                Node::Present => return None,
            }
        }
        None
    }

    /// Whether `path` exists (a kept file, a [`Node::Present`] one, or a
    /// symlink to either).
    pub fn exists(&self, path: &str) -> bool {
        let mut path = path.trim_start_matches('/').to_string();
        for _ in 0..8 {
            match self.files.get(&path) {
                None => return false,
                Some(Node::Link(target)) => path = resolve(&path, target),
                Some(_) => return true,
            }
        }
        false
    }

    /// The regular files directly under directory `dir` (with `/`).
    pub fn files_under<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.files
            .range(dir.to_string()..)
            .take_while(move |(p, _)| p.starts_with(dir))
            .filter_map(|(p, n)| match n {
                Node::File(d) => Some((p.as_str(), d.as_slice())),
                Node::Link(_) | Node::Present => None,
            })
    }

    /// Stacks `layers`, lowest first.
    pub fn stack<'a>(layers: impl IntoIterator<Item = &'a Layer>) -> Rootfs {
        let mut files: BTreeMap<String, Node> = BTreeMap::new();
        for layer in layers {
            for dir in &layer.opaque {
                files.retain(|p, _| !p.starts_with(dir.as_str()));
            }
            for gone in &layer.whiteouts {
                let below = format!("{gone}/");
                files.retain(|p, _| p != gone && !p.starts_with(&below));
            }
            for (p, n) in &layer.files {
                files.insert(p.clone(), n.clone());
            }
        }
        Rootfs { files }
    }
}

/// A symlink `target` found at `path`, as a path from the root.
fn resolve(path: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        let mut p: Vec<&str> = path.split('/').collect();
        p.pop();
        p
    };
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn clean(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .to_string()
}

/// Reads one layer tar, keeping what cordon reads.
pub fn read_layer(r: impl Read) -> std::io::Result<Layer> {
    let mut layer = Layer::default();
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        let (dir, name) = match path.rsplit_once('/') {
            Some((d, n)) => (format!("{d}/"), n.to_string()),
            None => (String::new(), path.clone()),
        };
        if name == ".wh..wh..opq" {
            layer.opaque.push(dir);
            continue;
        }
        if let Some(gone) = name.strip_prefix(".wh.") {
            layer.whiteouts.push(format!("{dir}{gone}"));
            continue;
        }
        if PRESENT.contains(&path.as_str()) {
            layer.files.insert(path, Node::Present);
            continue;
        }
        if !wanted(&path) {
            continue;
        }
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                entry.read_to_end(&mut data)?;
                layer.files.insert(path, Node::File(data));
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned())
                    .unwrap_or_default();
                layer.files.insert(path, Node::Link(target));
            }
            tar::EntryType::Link => {
                // A hard link names the earlier path in the same layer.
                let target = entry
                    .link_name_bytes()
                    .map(|t| clean(&String::from_utf8_lossy(&t)))
                    .unwrap_or_default();
                if let Some(n) = layer.files.get(&target).cloned() {
                    layer.files.insert(path, n);
                }
            }
            _ => {}
        }
    }
    Ok(layer)
}

/// The `ustar` magic at offset 257 of a tar header block.
fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// gzip's magic bytes.
const GZIP: [u8; 2] = [0x1f, 0x8b];
/// zstd's frame magic (little-endian 0xFD2FB528).
const ZSTD: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Reads from `r` until `buf` holds `want` bytes (fewer only at its end).
fn fill(r: &mut impl Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<()> {
    let mut chunk = [0u8; 512];
    while buf.len() < want {
        let n = r.read(&mut chunk[..want - buf.len()])?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

/// What a compressed blob turned out to hold.
enum Unpacked {
    /// A layer tar.
    Layer(Layer),
    /// Not a tar (kept as nothing: no metadata is compressed).
    Other,
}

/// Decompresses `r` (gzip or zstd, per `head`) and reads it as a layer
/// if it is a tar (an empty layer, only end-of-archive zeros, too).
fn unpack(path: &str, head: Vec<u8>, r: impl Read) -> Result<Unpacked, String> {
    let compressed = std::io::Cursor::new(head.clone()).chain(r);
    let mut inner: Box<dyn Read + '_> = if head.starts_with(&GZIP) {
        // A layer may be several concatenated gzip members.
        Box::new(flate2::read::MultiGzDecoder::new(compressed))
    } else {
        Box::new(
            zstd::stream::read::Decoder::new(compressed)
                .map_err(|e| format!("layer {path}: zstd: {e}"))?,
        )
    };
    let mut first = Vec::with_capacity(512);
    fill(&mut inner, &mut first, 512).map_err(|e| format!("layer {path}: {e}"))?;
    if is_tar(&first) {
        let layer = read_layer(std::io::Cursor::new(first).chain(inner))
            .map_err(|e| format!("layer {path}: {e}"))?;
        Ok(Unpacked::Layer(layer))
    } else if first.len() == 512 && first.iter().all(|b| *b == 0) {
        Ok(Unpacked::Layer(Layer::default()))
    } else {
        Ok(Unpacked::Other)
    }
}

/// Reads an image export (the stream of `docker save`), returning the
/// merged root filesystem. Layers are plain tars, or gzip or zstd
/// compressed ones.
pub fn read_export(r: impl Read) -> Result<Rootfs, String> {
    let mut layers: HashMap<String, Layer> = HashMap::new();
    let mut meta: HashMap<String, Vec<u8>> = HashMap::new();
    // Compressed blobs that are not tars.
    let mut others: Vec<String> = Vec::new();
    // `docker save` writes a layer shared by two images once and links it.
    let mut links: HashMap<String, String> = HashMap::new();
    let mut archive = tar::Archive::new(r);
    let entries = archive.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = clean(&String::from_utf8_lossy(&entry.path_bytes()));
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::Symlink || kind == tar::EntryType::Link {
            if let Some(target) = entry.link_name_bytes() {
                let target = String::from_utf8_lossy(&target).into_owned();
                let target = if kind == tar::EntryType::Symlink {
                    resolve(&path, &target)
                } else {
                    clean(&target)
                };
                links.insert(path, target);
            }
            continue;
        }
        if kind != tar::EntryType::Regular {
            continue;
        }
        let size = entry.size();
        // Peek at the first block: a layer is a tar, possibly compressed;
        // everything else small is kept as metadata.
        let mut head = vec![0u8; 512.min(size as usize)];
        entry
            .read_exact(&mut head)
            .map_err(|e| format!("{path}: {e}"))?;
        if is_tar(&head) {
            let layer = read_layer(std::io::Cursor::new(head).chain(&mut entry))
                .map_err(|e| format!("layer {path}: {e}"))?;
            layers.insert(path, layer);
        } else if head.starts_with(&GZIP) || head.starts_with(&ZSTD) {
            match unpack(&path, head, &mut entry)? {
                Unpacked::Layer(layer) => {
                    layers.insert(path, layer);
                }
                Unpacked::Other => others.push(path),
            }
        } else if size <= MAX_META {
            let mut data = head;
            entry
                .read_to_end(&mut data)
                .map_err(|e| format!("{path}: {e}"))?;
            meta.insert(path, data);
        }
    }
    let manifest = meta
        .get("manifest.json")
        .ok_or("no manifest.json in the export")?;
    let manifest: serde_json::Value =
        serde_json::from_slice(manifest).map_err(|e| format!("manifest.json: {e}"))?;
    let order: Vec<String> = manifest
        .get(0)
        .and_then(|m| m.get("Layers"))
        .and_then(|l| l.as_array())
        .ok_or("manifest.json names no layers")?
        .iter()
        .filter_map(|l| l.as_str().map(clean))
        .collect();
    let mut stack = Vec::new();
    for path in &order {
        let mut path = path;
        for _ in 0..8 {
            match links.get(path) {
                Some(t) => path = t,
                None => break,
            }
        }
        // An empty layer is not a tar with entries: kept as metadata.
        if let Some(l) = layers.get(path) {
            stack.push(l);
        } else if others.contains(path) {
            return Err(format!(
                "layer {path} is compressed but holds no tar archive"
            ));
        } else if !meta.contains_key(path) {
            return Err(format!(
                "manifest.json names layer {path}, absent from the export"
            ));
        }
    }
    Ok(Rootfs::stack(stack))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn symlink(tarball: &mut Vec<u8>, path: &str, target: &str) {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, path, target).unwrap();
        let extra = b.into_inner().unwrap();
        // Drop the end-of-archive blocks of the first tar, append.
        let end = tarball.len() - 1024;
        tarball.truncate(end);
        tarball.extend_from_slice(&extra);
    }

    /// A `docker save` export with three layers: a status file replaced,
    /// an apk database whited out, a status.d directory made opaque.
    #[test]
    fn whiteouts_and_opaque_directories_apply_in_manifest_order() {
        let mut l1 = tar(&[
            ("var/lib/dpkg/status", b"Package: old\n".as_slice()),
            ("lib/apk/db/installed", b"P:musl\n"),
            ("var/lib/dpkg/status.d/a", b"Package: a\n"),
            ("usr/lib/os-release", b"ID=debian\n"),
            ("usr/bin/big", &[7u8; 4096]),
        ]);
        symlink(&mut l1, "etc/os-release", "../usr/lib/os-release");
        let l2 = tar(&[
            ("var/lib/dpkg/status", b"Package: new\n".as_slice()),
            ("lib/apk/db/.wh.installed", b""),
        ]);
        let l3 = tar(&[
            ("var/lib/dpkg/status.d/.wh..wh..opq", b"".as_slice()),
            ("var/lib/dpkg/status.d/b", b"Package: b\n"),
        ]);
        let manifest =
            br#"[{"Config":"c.json","Layers":["l1/layer.tar","l2/layer.tar","blobs/sha256/l3"]}]"#;
        // The manifest last, the layers out of order: as a stream reads.
        let export = tar(&[
            ("blobs/sha256/l3", &l3),
            ("l1/layer.tar", &l1),
            ("c.json", b"{}"),
            ("l2/layer.tar", &l2),
            ("manifest.json", manifest),
        ]);
        let fs = read_export(std::io::Cursor::new(export)).unwrap();
        assert_eq!(
            fs.read("var/lib/dpkg/status"),
            Some(b"Package: new\n".as_slice())
        );
        assert_eq!(fs.read("lib/apk/db/installed"), None);
        let under: Vec<_> = fs
            .files_under("var/lib/dpkg/status.d/")
            .map(|(p, _)| p)
            .collect();
        assert_eq!(under, ["var/lib/dpkg/status.d/b"]);
        assert_eq!(fs.read("/etc/os-release"), Some(b"ID=debian\n".as_slice()));
        assert!(
            !fs.files.contains_key("usr/bin/big"),
            "only wanted files are kept"
        );
    }

    /// A layer written once and linked from a second directory, as
    /// `docker save` does for a layer two images share.
    #[test]
    fn a_linked_layer_is_followed() {
        let layer = tar(&[("etc/os-release", b"ID=alpine\n".as_slice())]);
        let manifest = br#"[{"Config":"c.json","Layers":["b/layer.tar"]}]"#;
        let mut export = tar(&[("a/layer.tar", &layer), ("manifest.json", manifest)]);
        symlink(&mut export, "b/layer.tar", "../a/layer.tar");
        let fs = read_export(std::io::Cursor::new(export)).unwrap();
        assert_eq!(fs.read("etc/os-release"), Some(b"ID=alpine\n".as_slice()));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(data, 3).unwrap()
    }

    /// An OCI-layout export whose layers are gzip, zstd and plain tars:
    /// each is decompressed, and the whiteouts of the zstd layer delete
    /// what the gzip one wrote; an opaque directory in the plain one
    /// empties what both wrote.
    #[test]
    fn gzip_and_zstd_layers_stack_with_whiteouts_across_them() {
        let l1 = gzip(&tar(&[
            ("var/lib/dpkg/status", b"Package: old\n".as_slice()),
            ("lib/apk/db/installed", b"P:musl\n"),
            ("var/lib/dpkg/status.d/a", b"Package: a\n"),
            ("var/lib/rpm/Packages", &[9u8; 8192]),
            ("usr/bin/big", &[7u8; 65536]),
        ]));
        let l2 = zstd(&tar(&[
            ("var/lib/dpkg/status", b"Package: new\n".as_slice()),
            ("lib/apk/db/.wh.installed", b""),
            ("var/lib/dpkg/status.d/b", b"Package: b\n"),
        ]));
        let l3 = tar(&[
            ("var/lib/dpkg/status.d/.wh..wh..opq", b"".as_slice()),
            ("var/lib/dpkg/status.d/c", b"Package: c\n"),
        ]);
        // An empty layer, compressed: only the end-of-archive blocks.
        let l4 = gzip(&tar(&[]));
        assert_ne!(l1[..2], l3[..2], "the first layer is compressed");
        let manifest = br#"[{"Config":"blobs/sha256/cfg","Layers":["blobs/sha256/l1","blobs/sha256/l2","blobs/sha256/l3","blobs/sha256/l4"]}]"#;
        let export = tar(&[
            ("blobs/sha256/l2", &l2),
            ("blobs/sha256/cfg", b"{}"),
            ("blobs/sha256/l1", &l1),
            ("blobs/sha256/l4", &l4),
            ("blobs/sha256/l3", &l3),
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
            ("manifest.json", manifest),
        ]);
        let fs = read_export(std::io::Cursor::new(export)).unwrap();
        assert_eq!(
            fs.read("var/lib/dpkg/status"),
            Some(b"Package: new\n".as_slice())
        );
        assert_eq!(fs.read("lib/apk/db/installed"), None, "whited out");
        let under: Vec<_> = fs
            .files_under("var/lib/dpkg/status.d/")
            .map(|(p, _)| p)
            .collect();
        assert_eq!(under, ["var/lib/dpkg/status.d/c"]);
        // The BerkeleyDB rpm database: present, its content not kept.
        assert!(fs.exists("var/lib/rpm/Packages"));
        assert_eq!(fs.read("var/lib/rpm/Packages"), None);
        assert!(!fs.files.contains_key("usr/bin/big"));

        // The same export with the zstd layer's whiteout missing: the apk
        // database of the gzip layer is there (the control).
        let l2 = zstd(&tar(&[(
            "var/lib/dpkg/status",
            b"Package: new\n".as_slice(),
        )]));
        let export = tar(&[
            ("blobs/sha256/l1", &l1),
            ("blobs/sha256/l2", &l2),
            ("blobs/sha256/l3", &l3),
            ("blobs/sha256/l4", &l4),
            ("manifest.json", manifest),
        ]);
        let fs = read_export(std::io::Cursor::new(export)).unwrap();
        assert_eq!(
            fs.read("lib/apk/db/installed"),
            Some(b"P:musl\n".as_slice())
        );
    }

    /// A compressed layer that is not a tar, and a truncated one: errors
    /// naming the layer.
    #[test]
    fn a_compressed_blob_that_is_not_a_tar_is_named() {
        let manifest = br#"[{"Config":"c","Layers":["blobs/sha256/l1"]}]"#;
        let export = tar(&[
            ("blobs/sha256/l1", &gzip(b"not a tar at all")),
            ("manifest.json", manifest),
        ]);
        let err = read_export(std::io::Cursor::new(export)).unwrap_err();
        assert!(
            err.contains("blobs/sha256/l1") && err.contains("no tar"),
            "{err}"
        );
        let mut cut = zstd(&tar(&[("var/lib/dpkg/status", &[b'x'; 100_000][..])]));
        cut.truncate(cut.len() / 2);
        let export = tar(&[("blobs/sha256/l1", &cut), ("manifest.json", manifest)]);
        let err = read_export(std::io::Cursor::new(export)).unwrap_err();
        assert!(err.contains("layer blobs/sha256/l1"), "{err}");
    }

    #[test]
    fn a_missing_manifest_is_an_error() {
        let export = tar(&[(
            "x/layer.tar",
            &tar(&[("etc/os-release", b"ID=x\n".as_slice())]),
        )]);
        assert!(read_export(std::io::Cursor::new(export))
            .unwrap_err()
            .contains("manifest.json"));
    }
}
