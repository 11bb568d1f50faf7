//! Exporters that follow their TLS files.
//!
//! Certificates are renewed while the gateway runs (cert-manager renews a
//! Certificate at two thirds of its life, and the kubelet updates the
//! mounted Secret in place), so an exporter built once would present an
//! expired client certificate, or distrust a collector's new CA, until the
//! process restarts. A [`Reloading`] exporter reads the files it was built
//! from again at most every [`RECHECK`], when an export is about to
//! start, and when their contents changed builds a new exporter from them
//! and uses it from then on. A rebuild that fails (a key written before
//! its certificate) keeps the exporter in use and says so; the next change
//! is tried again.

use crate::env::{OtelEnv, Signal};
use arc_swap::ArcSwap;
use opentelemetry_otlp::ExporterBuildError;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the files are read again, at most.
pub(crate) const RECHECK: Duration = Duration::from_secs(5);

/// Builds a signal's exporter from the environment.
type Build<E> = Box<dyn Fn(&OtelEnv) -> Result<E, ExporterBuildError> + Send + Sync>;

/// An exporter, rebuilt when its TLS files change; see the
/// [module docs](self).
pub(crate) struct Reloading<E> {
    current: ArcSwap<E>,
    source: Option<Source<E>>,
}

/// Where a [`Reloading`] exporter comes from.
struct Source<E> {
    signal: Signal,
    env: OtelEnv,
    build: Build<E>,
    files: Vec<PathBuf>,
    /// When the files were last read, and what they held.
    seen: Mutex<(Instant, Vec<Option<Vec<u8>>>)>,
}

impl<E> std::fmt::Debug for Reloading<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = self.source.as_ref().map(|s| &s.files);
        f.debug_struct("Reloading").field("files", &files).finish()
    }
}

impl<E> Reloading<E> {
    /// An exporter that is never rebuilt (tests' own exporters).
    #[cfg(test)]
    pub(crate) fn fixed(exporter: E) -> Reloading<E> {
        Reloading {
            current: ArcSwap::from_pointee(exporter),
            source: None,
        }
    }

    /// `signal`'s exporter made by `build` from `env`, made again when
    /// the files `env`'s TLS variables name change.
    ///
    /// # Errors
    ///
    /// What the first `build` returns.
    pub(crate) fn new(
        env: &OtelEnv,
        signal: Signal,
        build: impl Fn(&OtelEnv) -> Result<E, ExporterBuildError> + Send + Sync + 'static,
    ) -> Result<Reloading<E>, ExporterBuildError> {
        let files: Vec<PathBuf> = ["CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"]
            .into_iter()
            .filter_map(|suffix| env.for_signal(signal, suffix))
            .map(|(_, path)| PathBuf::from(path))
            .collect();
        let contents = read_all(&files);
        let exporter = build(env)?;
        let source = (!files.is_empty()).then(|| Source {
            signal,
            env: env.clone(),
            build: Box::new(build),
            files,
            seen: Mutex::new((Instant::now(), contents)),
        });
        Ok(Reloading {
            current: ArcSwap::from_pointee(exporter),
            source,
        })
    }

    /// The exporter to use now, rebuilt first if its files changed.
    pub(crate) fn current(&self) -> Arc<E> {
        if let Some(source) = &self.source {
            source.refresh(&self.current);
        }
        self.current.load_full()
    }
}

impl<E> Source<E> {
    /// Reads the files again when [`RECHECK`] has passed, and swaps in a
    /// new exporter when they changed and it builds.
    fn refresh(&self, current: &ArcSwap<E>) {
        // One export task per signal calls this; a second caller skips.
        let Ok(mut seen) = self.seen.try_lock() else {
            return;
        };
        if seen.0.elapsed() < RECHECK {
            return;
        }
        seen.0 = Instant::now();
        let contents = read_all(&self.files);
        if contents == seen.1 {
            return;
        }
        seen.1 = contents;
        let signal = self.signal.label();
        match (self.build)(&self.env) {
            Ok(exporter) => {
                current.store(Arc::new(exporter));
                tracing::info!(signal, files = ?self.files, "OTLP TLS files changed; exporter rebuilt");
            }
            Err(error) => tracing::warn!(
                signal,
                %error,
                "OTLP TLS files changed but do not build an exporter; the previous one stays"
            ),
        }
    }
}

/// Each file's bytes, `None` where it cannot be read (yet).
fn read_all(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file's change is picked up once [`RECHECK`] has passed; a change
    /// that does not build keeps the exporter in use.
    #[test]
    fn a_changed_file_rebuilds_the_exporter() {
        let dir = std::env::temp_dir().join(format!("tollgate-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, "one").unwrap_or_default();
        let env = OtelEnv::from_pairs([(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca.to_string_lossy().into_owned(),
        )]);
        // The "exporter" is the file's text; "bad" does not build.
        let build = |env: &OtelEnv| {
            let path = env
                .for_signal(Signal::Traces, "CERTIFICATE")
                .map(|(_, p)| p.to_string())
                .unwrap_or_default();
            match std::fs::read_to_string(path).unwrap_or_default().as_str() {
                "bad" => Err(ExporterBuildError::InvalidConfiguration("bad".into())),
                text => Ok(text.to_string()),
            }
        };
        let reloading = Reloading::new(&env, Signal::Traces, build).unwrap_or_else(|e| {
            panic!("{e}");
        });
        let age = |r: &Reloading<String>| {
            if let Some(source) = &r.source
                && let Ok(mut seen) = source.seen.lock()
            {
                seen.0 = Instant::now() - RECHECK;
            }
        };
        assert_eq!(*reloading.current(), "one");
        std::fs::write(&ca, "two").unwrap_or_default();
        assert_eq!(*reloading.current(), "one", "not before RECHECK");
        age(&reloading);
        assert_eq!(*reloading.current(), "two");
        std::fs::write(&ca, "bad").unwrap_or_default();
        age(&reloading);
        assert_eq!(
            *reloading.current(),
            "two",
            "a bad change keeps the old one"
        );
        std::fs::write(&ca, "three").unwrap_or_default();
        age(&reloading);
        assert_eq!(*reloading.current(), "three");
        assert!(Reloading::fixed(1).source.is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
