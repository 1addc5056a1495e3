//! The on-disk cache of compiled components, verified before use.
//!
//! Compiling a 12 MB JavaScript component takes seconds; the cache keeps
//! the compiled artifact keyed by the component's SHA-256 and the engine's
//! compatibility hash, so a restart loads it in milliseconds.
//!
//! A compiled artifact is native code: deserializing a tampered one runs
//! whatever machine code it holds. So an entry is trusted only when it
//! carries an HMAC-SHA256 tag made with a secret key that only the worker's
//! user can read (`mac.key`, mode 0600, in a folder of mode 0700). The
//! entry is read into memory once, its tag checked, and those same bytes
//! deserialized: nothing can change between the check and the load.
//!
//! Entries are named `{sha256}-{engine fingerprint}.signed.cwasm`; raw
//! artifacts of earlier versions (`….cwasm`) are never read.
//!
//! The cache is an optimisation, never a reason to stop: a folder others
//! can write, a key that is not private, an unwritable folder or a corrupt
//! entry each produce one warning and the component is compiled in memory.
//!
//! Every rebuilt plugin is a new entry (tens of MB for a Python or
//! JavaScript one), so the folder is kept under [`DEFAULT_MAX_BYTES`]: each
//! time an entry is written, the least recently used entries beyond the
//! limit are deleted (a hit marks its entry used), as are artifacts of
//! earlier versions and temporary files that a killed worker left.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Why a component could not be compiled. (The cache itself never fails a
/// load: its problems are warnings.)
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine configuration is invalid.
    #[error("cannot create the wasmtime engine: {0:#}")]
    Config(wasmtime::Error),
    /// Wasmtime rejected the component.
    #[error("cannot compile: {0:#}")]
    Compile(wasmtime::Error),
}

/// Where compiled components are kept: `$CAISSON_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/caisson/compiled`, else `~/.cache/caisson/compiled`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAISSON_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("caisson/compiled")
}

/// How a component was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a previously compiled, verified artifact.
    Hit,
    /// Compiled now (and stored, when a cache is in use).
    Compiled,
}

/// A loaded component and how long that took.
#[derive(Debug, Clone)]
pub struct LoadedComponent {
    /// The compiled component.
    pub component: Component,
    /// SHA-256 of the component bytes, hex: its version identity.
    pub sha256: String,
    /// From the cache or freshly compiled.
    pub outcome: CacheOutcome,
    /// Time spent compiling or deserializing.
    pub elapsed: Duration,
}

/// What a cache entry starts with, before its tag and the artifact.
const ENTRY_MAGIC: &[u8; 16] = b"caisson-cwasm-1\n";
/// Length of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// The key file, in the cache folder.
const KEY_FILE: &str = "mac.key";
/// How much the entries of a cache folder may hold together: 2 GiB, some
/// fifty Python plugins or hundreds of Rust ones.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;
/// A temporary file older than this is a killed writer's, not a live one's.
const STALE_TMP: Duration = Duration::from_secs(3600);

type HmacSha256 = Hmac<Sha256>;

/// Compiles components through a content-addressed, authenticated disk
/// cache (or, when there is none or it cannot be trusted, in memory).
#[derive(Debug, Clone)]
pub struct ComponentCache {
    inner: Arc<CacheInner>,
}

#[derive(Debug)]
struct CacheInner {
    /// The folder and its key, when the cache is usable.
    store: Option<Store>,
    /// Why there is no store, when one was asked for.
    disabled_because: Option<String>,
    /// One warning about failed writes is enough.
    warned_unwritable: AtomicBool,
    /// Distinguishes temporary files of concurrent writers in this process.
    next_tmp: AtomicU64,
    /// The entries' total size beyond which the least recently used go.
    max_bytes: u64,
}

struct Store {
    dir: PathBuf,
    key: [u8; TAG_LEN],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).field("key", &"<secret>").finish()
    }
}

impl ComponentCache {
    /// A cache in `dir`, created private to this user (mode 0700) when
    /// missing. When the folder cannot be created, can be written by others
    /// or is owned by someone else, or its key cannot be made or is not
    /// private, this warns once and compiles in memory.
    pub fn new(dir: PathBuf) -> Self {
        ComponentCache::with_limit(dir, DEFAULT_MAX_BYTES)
    }

    /// A cache in `dir` whose entries together stay under `max_bytes`.
    pub fn with_limit(dir: PathBuf, max_bytes: u64) -> Self {
        let (store, disabled_because) = match open_store(&dir) {
            Ok(store) => (Some(store), None),
            Err(why) => {
                tracing::warn!("compile cache {} not used, compiling in memory: {why}", dir.display());
                (None, Some(why))
            }
        };
        ComponentCache::with(store, disabled_because, max_bytes)
    }

    /// No caching: always compile.
    pub fn disabled() -> Self {
        ComponentCache::with(None, None, DEFAULT_MAX_BYTES)
    }

    fn with(store: Option<Store>, disabled_because: Option<String>, max_bytes: u64) -> Self {
        let inner =
            CacheInner { store, disabled_because, warned_unwritable: AtomicBool::new(false), next_tmp: AtomicU64::new(0), max_bytes };
        ComponentCache { inner: Arc::new(inner) }
    }

    /// The folder in use, or `None` when compiling in memory.
    pub fn dir(&self) -> Option<&Path> {
        self.inner.store.as_ref().map(|s| s.dir.as_path())
    }

    /// Why a requested cache folder is not used (the warning logged at
    /// start), if it is not.
    pub fn disabled_because(&self) -> Option<&str> {
        self.inner.disabled_because.as_deref()
    }

    /// The compiled form of `bytes` for `engine`. `label` names the plugin
    /// in progress messages and warnings.
    pub fn load(&self, engine: &Engine, bytes: &[u8], label: &str) -> Result<LoadedComponent, EngineError> {
        let started = Instant::now();
        let sha256 = sha256_hex(bytes);
        let Some(store) = &self.inner.store else {
            let component = with_progress(label, bytes.len(), started, || Component::new(engine, bytes)).map_err(EngineError::Compile)?;
            return Ok(LoadedComponent { component, sha256, outcome: CacheOutcome::Compiled, elapsed: started.elapsed() });
        };
        let name = format!("{sha256}-{:016x}.signed.cwasm", engine_fingerprint(engine));
        let path = store.dir.join(&name);
        match std::fs::read(&path) {
            Ok(entry) => match store.verified_artifact(&name, &entry).and_then(|artifact| deserialize_verified(engine, artifact)) {
                Ok(component) => {
                    mark_used(&path);
                    return Ok(LoadedComponent { component, sha256, outcome: CacheOutcome::Hit, elapsed: started.elapsed() });
                }
                Err(why) => {
                    tracing::warn!("{label}: discarding compile cache entry {}: {why}; recompiling", path.display());
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!("{label}: cannot delete {}: {e}", path.display());
                    }
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("{label}: cannot read compile cache entry {}: {e}; recompiling", path.display()),
        }
        let artifact = with_progress(label, bytes.len(), started, || engine.precompile_component(bytes)).map_err(EngineError::Compile)?;
        if let Err(e) = self.store_entry(store, &name, &artifact)
            && !self.inner.warned_unwritable.swap(true, Ordering::Relaxed)
        {
            tracing::warn!("compile cache {} is not writable, compiled components stay in memory: {e}", store.dir.display());
        }
        let component = deserialize_verified(engine, &artifact).map_err(|e| EngineError::Compile(wasmtime::Error::msg(e)))?;
        Ok(LoadedComponent { component, sha256, outcome: CacheOutcome::Compiled, elapsed: started.elapsed() })
    }

    /// Writes `MAGIC | tag | artifact` to a temporary file in the folder,
    /// then renames it, so a reader never sees half an entry.
    fn store_entry(&self, store: &Store, name: &str, artifact: &[u8]) -> std::io::Result<()> {
        let n = self.inner.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = store.dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            file.write_all(ENTRY_MAGIC)?;
            file.write_all(&store.tag(name, artifact))?;
            file.write_all(artifact)?;
            file.sync_all()?;
            std::fs::rename(&tmp, store.dir.join(name))
        };
        let result = write();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        } else {
            trim(&store.dir, name, self.inner.max_bytes);
        }
        result
    }
}

/// Marks an entry used now, for [`trim`]'s least-recently-used order. (A
/// read-only folder keeps its old times: nothing is trimmed there either.)
fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(std::time::SystemTime::now());
    }
}

/// Deletes what `dir` need not keep: raw artifacts of earlier versions,
/// temporary files of killed writers, and the least recently used entries
/// while all of them hold more than `max_bytes`. `just_written` stays.
fn trim(dir: &Path, just_written: &str, max_bytes: u64) {
    let Ok(listing) = std::fs::read_dir(dir) else { return };
    let now = std::time::SystemTime::now();
    let mut entries = Vec::new();
    for entry in listing.filter_map(Result::ok) {
        let (path, name) = (entry.path(), entry.file_name().to_string_lossy().into_owned());
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta.modified().unwrap_or(now);
        if name.ends_with(".tmp") {
            if now.duration_since(modified).is_ok_and(|age| age > STALE_TMP) {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.ends_with(".signed.cwasm") {
            entries.push((modified, meta.len(), path, name));
        } else if name.ends_with(".cwasm") {
            let _ = std::fs::remove_file(&path);
        }
    }
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path, name) in entries {
        if total <= max_bytes {
            break;
        }
        if name != just_written && std::fs::remove_file(&path).is_ok() {
            tracing::info!("compile cache: deleted {name}, the least recently used entry, to stay under {} MiB", max_bytes >> 20);
            total -= len;
        }
    }
}

impl Store {
    /// The tag of an entry: it covers the entry's name (the component's
    /// hash and the engine's fingerprint) too, so an entry cannot be passed
    /// off as another's.
    fn tag(&self, name: &str, artifact: &[u8]) -> [u8; TAG_LEN] {
        self.mac(name, artifact).finalize().into_bytes().into()
    }

    fn mac(&self, name: &str, artifact: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(artifact);
        mac
    }

    /// The artifact inside `entry`, if its tag is right.
    fn verified_artifact<'a>(&self, name: &str, entry: &'a [u8]) -> Result<&'a [u8], String> {
        let rest = entry.strip_prefix(ENTRY_MAGIC.as_slice()).ok_or("not a Caisson cache entry (bad header)")?;
        if rest.len() < TAG_LEN {
            return Err("truncated entry".into());
        }
        let (tag, artifact) = rest.split_at(TAG_LEN);
        self.mac(name, artifact).verify_slice(tag).map_err(|_| "its authentication tag does not match (corrupt or tampered)".to_owned())?;
        Ok(artifact)
    }
}

/// Creates or checks the folder and its key. The error says why the folder
/// cannot be trusted and what to do.
fn open_store(dir: &Path) -> Result<Store, String> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create it: {e} (set CAISSON_CACHE_DIR to a writable folder)"))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    check_private(&meta, 0o022, "folder")?;
    let key = read_or_create_key(&dir.join(KEY_FILE))?;
    Ok(Store { dir: dir.to_owned(), key })
}

/// Refuses a file or folder owned by another user or with any of
/// `forbidden` mode bits: whoever can write it could plant native code.
fn check_private(meta: &std::fs::Metadata, forbidden: u32, what: &str) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!("the {what} is owned by uid {}, not by this user (uid {me})", meta.uid()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(format!("the {what} has mode {mode:03o}: others could change it (fix: chmod go-w, or chmod 700 for the folder)"));
    }
    Ok(())
}

/// The cache's secret key: read it, or make one. A new key is written to a
/// temporary file and hard-linked into place, so of two workers starting
/// together one key wins and both read it whole.
fn read_or_create_key(path: &Path) -> Result<[u8; TAG_LEN], String> {
    if !path.exists() {
        let mut key = [0u8; TAG_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(|e| format!("cannot read /dev/urandom for a key: {e}"))?;
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let made = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(&key).and_then(|()| f.sync_all()))
            .and_then(|()| match std::fs::hard_link(&tmp, path) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            });
        let _ = std::fs::remove_file(&tmp);
        made.map_err(|e| format!("cannot write the key {}: {e}", path.display()))?;
    }
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("cannot read the key {}: {e}", path.display()))?;
    check_private(&meta, 0o077, &format!("key {}", path.display()))?;
    let mut key = [0u8; TAG_LEN];
    let mut extra = [0u8; 1];
    let whole = file.read_exact(&mut key).is_ok() && matches!(file.read(&mut extra), Ok(0));
    if !whole {
        return Err(format!("the key {} is not {TAG_LEN} bytes (delete it to make a new one)", path.display()));
    }
    Ok(key)
}

/// Runs a compile, telling the log about it when the component is big:
/// Cranelift gives no progress callback, so a line every few seconds says
/// the compile is still going and a big plugin does not look hung.
fn with_progress<T>(label: &str, size: usize, started: Instant, compile: impl FnOnce() -> T) -> T {
    if size <= 1 << 20 {
        return compile();
    }
    tracing::info!("{label}: compiling {:.1} MB (cached afterwards)…", size as f64 / 1e6);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let label_owned = label.to_owned();
    let progress = std::thread::spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(Duration::from_secs(3)) {
            tracing::info!("{label_owned}: still compiling ({}s)…", started.elapsed().as_secs());
        }
    });
    let result = compile();
    drop(done);
    let _ = progress.join();
    tracing::info!("{label}: compiled in {:.1}s", started.elapsed().as_secs_f64());
    result
}

/// A component's version identity: the SHA-256 of its bytes, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A stable number for the engine's code-affecting settings and version.
fn engine_fingerprint(engine: &Engine) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    h.finish()
}

#[allow(unsafe_code)]
fn deserialize_verified(engine: &Engine, artifact: &[u8]) -> Result<Component, String> {
    // SAFETY: wasmtime requires that the bytes be an artifact produced by
    // `precompile_component` of a compatible engine. They are either what
    // this process just compiled, or an entry whose HMAC, made with a key
    // only this user can read, was checked on these very bytes (in memory,
    // so they cannot change after the check); the entry's name binds it to
    // this engine's compatibility hash, and wasmtime checks the artifact's
    // header against the engine as well.
    unsafe { Component::deserialize(engine, artifact) }.map_err(|e| format!("{e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineOptions, build_engine};
    use crate::policy::PluginKind;

    /// A small real component (a core module wrapped as a component).
    const COMPONENT: &str = r#"(component
        (core module $m (func (export "f") (result i32) i32.const 42))
        (core instance $i (instantiate $m))
        (func (export "f") (result u32) (canon lift (core func $i "f"))))"#;

    fn engine() -> Engine {
        build_engine(PluginKind::Activity, &EngineOptions::default()).unwrap()
    }

    fn component_bytes() -> Vec<u8> {
        COMPONENT.as_bytes().to_vec()
    }

    fn entries(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "cwasm")).collect();
        found.sort();
        found
    }

    fn call_f(engine: &Engine, component: &Component) -> u32 {
        let mut store = wasmtime::Store::new(engine, ());
        store.set_epoch_deadline(1_000);
        let linker = wasmtime::component::Linker::<()>::new(engine);
        let instance = linker.instantiate(&mut store, component).unwrap();
        let f = instance.get_typed_func::<(), (u32,)>(&mut store, "f").unwrap();
        f.call(&mut store, ()).unwrap().0
    }

    #[test]
    fn a_new_cache_folder_is_private_and_entries_are_hits_afterwards() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested/compiled");
        let cache = ComponentCache::new(dir.clone());
        assert_eq!(cache.dir(), Some(dir.as_path()));
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        let engine = engine();
        let first = cache.load(&engine, &component_bytes(), "t").unwrap();
        assert_eq!(first.outcome, CacheOutcome::Compiled);
        let again = ComponentCache::new(dir.clone()).load(&engine, &component_bytes(), "t").unwrap();
        assert_eq!(again.outcome, CacheOutcome::Hit);
        assert_eq!(call_f(&engine, &again.component), 42);
    }

    #[test]
    fn an_entry_with_flipped_bytes_is_discarded_and_recompiled() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(tmp.path().to_owned());
        let engine = engine();
        cache.load(&engine, &component_bytes(), "t").unwrap();
        let [entry] = entries(tmp.path()).try_into().unwrap();
        let mut bytes = std::fs::read(&entry).unwrap();
        // Header (magic, tag and wasmtime's own header) intact; code flipped.
        let start = ENTRY_MAGIC.len() + TAG_LEN + 64;
        let end = bytes.len().min(start + 4096);
        bytes[start..end].iter_mut().for_each(|b| *b = !*b);
        std::fs::write(&entry, &bytes).unwrap();

        let loaded = cache.load(&engine, &component_bytes(), "t").unwrap();
        assert_eq!(loaded.outcome, CacheOutcome::Compiled, "the tampered entry is not used");
        assert_eq!(call_f(&engine, &loaded.component), 42);
        assert_ne!(std::fs::read(&entry).unwrap(), bytes, "the entry was replaced by a good one");
        assert_eq!(cache.load(&engine, &component_bytes(), "t").unwrap().outcome, CacheOutcome::Hit);
    }

    #[test]
    fn garbage_truncated_and_foreign_entries_never_reach_wasmtime() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(tmp.path().to_owned());
        let engine = engine();
        cache.load(&engine, &component_bytes(), "t").unwrap();
        let [entry] = entries(tmp.path()).try_into().unwrap();
        let good = std::fs::read(&entry).unwrap();
        // A raw wasmtime artifact (no tag), as an older Caisson wrote it or
        // as someone without the key would plant it.
        let raw = engine.precompile_component(&component_bytes()).unwrap();
        for content in [Vec::new(), b"garbage".to_vec(), good[..ENTRY_MAGIC.len() + 10].to_vec(), raw] {
            std::fs::write(&entry, &content).unwrap();
            let loaded = cache.load(&engine, &component_bytes(), "t").unwrap();
            assert_eq!(loaded.outcome, CacheOutcome::Compiled);
        }
        // A correctly tagged entry under another component's name.
        let other = tmp.path().join(format!("{}-0000000000000000.cwasm", "0".repeat(64)));
        std::fs::write(&other, &good).unwrap();
        let store = cache.inner.store.as_ref().unwrap();
        let name = other.file_name().unwrap().to_str().unwrap();
        assert!(store.verified_artifact(name, &good).is_err(), "a tag binds the entry to its name");
    }

    #[test]
    fn the_least_recently_used_entries_go_when_the_folder_is_full() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        let variant = |n: u32| COMPONENT.replace("i32.const 42", &format!("i32.const {n}")).into_bytes();
        let one = ComponentCache::new(tmp.path().to_owned());
        one.load(&engine, &variant(1), "t").unwrap();
        let size = entries(tmp.path())[0].metadata().unwrap().len();
        // Room for two entries: writing a third evicts the one used least
        // recently (2, since 1 was used after it), not the oldest written.
        let cache = ComponentCache::with_limit(tmp.path().to_owned(), 2 * size + size / 2);
        cache.load(&engine, &variant(2), "t").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(cache.load(&engine, &variant(1), "t").unwrap().outcome, CacheOutcome::Hit, "marks 1 used");
        let legacy = tmp.path().join(format!("{}-0000000000000000.cwasm", "0".repeat(64)));
        let stale = tmp.path().join(".x.signed.cwasm.1.0.tmp");
        std::fs::write(&legacy, b"old").unwrap();
        std::fs::write(&stale, b"half").unwrap();
        std::fs::File::open(&stale).unwrap().set_modified(std::time::SystemTime::now() - 2 * STALE_TMP).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        cache.load(&engine, &variant(3), "t").unwrap();
        assert_eq!(entries(tmp.path()).len(), 2, "{:?}", entries(tmp.path()));
        assert!(!legacy.exists() && !stale.exists(), "old artifacts and a killed writer's file are deleted");
        assert_eq!(cache.load(&engine, &variant(1), "t").unwrap().outcome, CacheOutcome::Hit);
        assert_eq!(cache.load(&engine, &variant(3), "t").unwrap().outcome, CacheOutcome::Hit);
        assert_eq!(cache.load(&engine, &variant(2), "t").unwrap().outcome, CacheOutcome::Compiled, "2 was evicted");
    }

    #[test]
    fn a_folder_others_can_write_is_refused_and_loads_still_work() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let cache = ComponentCache::new(tmp.path().to_owned());
        assert_eq!(cache.dir(), None);
        assert!(cache.disabled_because().unwrap().contains("mode 777"), "{:?}", cache.disabled_because());
        let engine = engine();
        let loaded = cache.load(&engine, &component_bytes(), "t").unwrap();
        assert_eq!(loaded.outcome, CacheOutcome::Compiled);
        assert_eq!(call_f(&engine, &loaded.component), 42);
        assert!(entries(tmp.path()).is_empty(), "nothing written to the untrusted folder");
    }

    #[test]
    fn a_key_others_can_read_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        drop(ComponentCache::new(tmp.path().to_owned()));
        std::fs::set_permissions(tmp.path().join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
        let cache = ComponentCache::new(tmp.path().to_owned());
        assert!(cache.disabled_because().unwrap().contains("mode 644"), "{:?}", cache.disabled_because());
    }

    #[test]
    fn a_folder_that_cannot_be_created_means_compiling_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let cache = ComponentCache::new(file.join("compiled"));
        assert!(cache.disabled_because().unwrap().contains("cannot create"), "{:?}", cache.disabled_because());
        let loaded = cache.load(&engine(), &component_bytes(), "t").unwrap();
        assert_eq!(loaded.outcome, CacheOutcome::Compiled);
    }

    #[test]
    fn an_unwritable_folder_means_compiling_in_memory_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ComponentCache::new(tmp.path().to_owned());
        // The folder becomes unwritable after start (root ignores mode
        // bits, so make writes fail by removing the folder instead).
        std::fs::remove_dir_all(tmp.path()).unwrap();
        let engine = engine();
        for _ in 0..2 {
            let loaded = cache.load(&engine, &component_bytes(), "t").unwrap();
            assert_eq!(loaded.outcome, CacheOutcome::Compiled);
            assert_eq!(call_f(&engine, &loaded.component), 42);
        }
        assert!(cache.inner.warned_unwritable.load(Ordering::Relaxed), "warned once");
    }

    #[test]
    fn a_read_only_folder_still_serves_its_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = engine();
        ComponentCache::new(tmp.path().to_owned()).load(&engine, &component_bytes(), "t").unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
        let loaded = ComponentCache::new(tmp.path().to_owned()).load(&engine, &component_bytes(), "t").unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(loaded.outcome, CacheOutcome::Hit);
        assert_eq!(call_f(&engine, &loaded.component), 42);
    }
}
