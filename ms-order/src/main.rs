//! ms-order binary: configuration from the environment, run until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ms_common::telemetry::init("ms-order");
    let run = async {
        let running = ms_order::start(ms_order::OrderConfig::from_env()?).await?;
        running.handle.run_until_signalled().await;
        anyhow::Ok(())
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ms-order failed: {e:#}");
            eprintln!("ms-order failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
