//! Files built into the `caisson` binary (see `host/build.rs`): the host's
//! WIT packages, the guest libraries, the project templates. They let
//! `caisson new` write a project that points at nothing in a Caisson
//! checkout.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The embedded files under `prefix/`, with paths relative to it.
pub fn tree(prefix: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    FILES.iter().filter_map(move |(path, bytes)| path.strip_prefix(prefix).and_then(|p| p.strip_prefix('/')).map(|p| (p, *bytes)))
}

/// One embedded file.
pub fn file(path: &str) -> Option<&'static [u8]> {
    FILES.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// The version of an embedded WIT package (`workflow` or `activity`), read
/// from its `package caisson:NAME@VERSION;` line, so templates follow a
/// WIT bump without an edit.
pub fn wit_version(package: &str) -> Option<String> {
    let prefix = format!("package caisson:{package}@");
    tree(&format!("wit/{package}")).find_map(|(_, bytes)| {
        std::str::from_utf8(bytes)
            .ok()?
            .lines()
            .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim_end_matches(';').trim().to_owned()))
    })
}
