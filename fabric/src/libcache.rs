//! A small cache of libraries loaded at run time, keyed by the name or path asked
//! for: several builds of one library (the system's UCX and an engine's bundled one,
//! whose hashed sonames do not clash) can be loaded side by side. Loaded libraries
//! stay loaded for the life of the process, as their handlers may still run.

use std::sync::Mutex;

/// At most this many distinct libraries of one kind are kept.
const MAX_LIBS: usize = 8;

pub(crate) struct LibCache<T: 'static> {
    slots: Mutex<Vec<(String, &'static T)>>,
}

impl<T: Send + Sync + 'static> LibCache<T> {
    pub const fn new() -> Self {
        LibCache {
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The library loaded for `key`, loading it with `load` on first use. Failures
    /// are not cached (the file may appear later).
    pub fn get_or_load(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<T, String>,
    ) -> Result<&'static T, String> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, l)) = slots.iter().find(|(k, _)| k == key) {
            return Ok(l);
        }
        if slots.len() >= MAX_LIBS {
            return Err(format!(
                "{MAX_LIBS} different builds are loaded already; restart the agent to load `{key}`"
            ));
        }
        let lib: &'static T = Box::leak(Box::new(load()?));
        slots.push((key.to_string(), lib));
        Ok(lib)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_by_path_and_failures_retry() {
        let c: LibCache<u32> = LibCache::new();
        assert_eq!(c.get_or_load("a", || Ok(1)), Ok(&1));
        assert_eq!(c.get_or_load("a", || Ok(2)), Ok(&1));
        assert_eq!(c.get_or_load("b", || Ok(3)), Ok(&3));
        assert!(c.get_or_load("c", || Err("no".into())).is_err());
        assert_eq!(c.get_or_load("c", || Ok(4)), Ok(&4));
        for i in 0..10 {
            let _ = c.get_or_load(&format!("x{i}"), || Ok(i));
        }
        assert!(c.get_or_load("y", || Ok(9)).is_err());
    }
}
