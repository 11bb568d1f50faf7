//! Why one manifest file could not be used; raised while reading the
//! folder and reported with the file's path.

use std::io;
use thiserror::Error;

/// Why one file could not be used.
#[derive(Debug, Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not valid YAML.
    #[error("{path}:{line}: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// 1-based line of the error (0 when unknown).
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A document is a kind Tollgate reads but does not fit its schema.
    #[error("{path}: document {index}: {message}")]
    Document {
        /// The file.
        path: String,
        /// 1-based index of the document in the file.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
}
