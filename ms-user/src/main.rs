//! ms-user binary: configuration from the environment, run until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ms_common::telemetry::init("ms-user");
    let run = async {
        let cfg = ms_user::UserConfig::from_env()?;
        let running = ms_user::start(cfg).await?;
        running.handle.run_until_signalled().await;
        anyhow::Ok(())
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ms-user failed: {e:#}");
            eprintln!("ms-user failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
