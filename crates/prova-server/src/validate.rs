//! Descriptors submitted over HTTP are parsed and validated off the async
//! workers, on a thread with a large, known stack.
//!
//! A tokio worker has a 2 MiB stack; a hostile descriptor (a template with
//! 15,000 pipes, YAML nested 10,000 deep) that recursed past it would abort
//! the whole server, and a stack overflow cannot be caught. The parsers
//! bound their depth; this is the second wall: validation runs on its own
//! thread with [`STACK_BYTES`] of stack, at most [`MAX_CONCURRENT`] at once,
//! and a panic there becomes an error for that one request.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use prova_core::node::Format;
use prova_engine::Registry;
use prova_engine::prepare::{PreparedJob, prepare_str_in};
use tokio::sync::Semaphore;

use crate::manager::ManagerError;

/// Stack of a validation thread: 64 MiB (reserved, touched only as used).
pub const STACK_BYTES: usize = 64 << 20;
/// Validations running at once; more wait their turn.
pub const MAX_CONCURRENT: usize = 4;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(MAX_CONCURRENT));

/// What to validate.
pub struct Submission {
    pub text: String,
    pub format: Format,
    pub source: Option<PathBuf>,
    pub files_root: Option<PathBuf>,
}

/// [`prepare_str_in`] on a large-stack thread.
pub async fn prepare(
    submission: Submission,
    registry: &Registry,
) -> Result<PreparedJob, ManagerError> {
    let _slot = SLOTS
        .acquire()
        .await
        .map_err(|_| ManagerError::Internal("validation slots closed".into()))?;
    let registry = Arc::new(registry.clone());
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("prova-validate".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                prepare_str_in(
                    &submission.text,
                    submission.format,
                    submission.source.as_deref(),
                    submission.files_root.as_deref(),
                    &registry,
                )
            }));
            let _ = tx.send(result);
        })
        .map_err(|e| ManagerError::Internal(format!("cannot start a validation thread: {e}")))?;
    match rx.await {
        Ok(Ok(result)) => Ok(result?),
        Ok(Err(panic)) => Err(ManagerError::Internal(format!(
            "validating the descriptor panicked: {}",
            panic_message(&*panic)
        ))),
        Err(_) => Err(ManagerError::Internal(
            "the validation thread ended without an answer".into(),
        )),
    }
}

pub use prova_engine::runner::panic_message;
