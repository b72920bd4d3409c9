//! Background work on a tokio runtime and thread of its own, so that it and the node's
//! runtime do not queue behind each other (the inbox writer, the delivery worker).

use std::future::Future;

use tokio::runtime::Runtime;

/// Builds a runtime with `build` on a new thread called `name`, runs `work` on it to the end,
/// and returns then. Failures to start are logged: the node serves on without that work.
pub async fn run<F>(
    name: &str,
    build: impl FnOnce() -> std::io::Result<Runtime> + Send + 'static,
    work: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let (finished, done) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
        // Built here, not by the caller: a runtime may not be dropped inside another's
        // context, as it would be if the thread could not start.
        match build() {
            Ok(runtime) => runtime.block_on(work),
            Err(e) => tracing::error!("could not start a runtime: {e}"),
        }
        let _ = finished.send(());
    });
    match spawned {
        Ok(_) => {
            let _ = done.await;
        }
        Err(e) => tracing::error!("could not start the thread {name}: {e}"),
    }
}
