//! ms-payment binary: configuration from the environment, run until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ms_common::telemetry::init("ms-payment");
    let run = async {
        let cfg = ms_payment::PaymentConfig::from_env()?;
        let running = ms_payment::start(cfg).await?;
        running.handle.run_until_signalled().await;
        anyhow::Ok(())
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ms-payment failed: {e:#}");
            eprintln!("ms-payment failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
