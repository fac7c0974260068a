//! ms-stuff binary: configuration from the environment, run until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ms_common::telemetry::init("ms-stuff");
    let run = async {
        let cfg = ms_stuff::StuffConfig::from_env()?;
        let running = ms_stuff::start(cfg).await?;
        running.handle.run_until_signalled().await;
        anyhow::Ok(())
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ms-stuff failed: {e:#}");
            eprintln!("ms-stuff failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
