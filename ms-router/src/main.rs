//! ms-router binary: configuration from the environment, serve until SIGINT/SIGTERM.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ms_common::telemetry::init("ms-router");
    let run = async {
        let cfg = ms_router::RouterConfig::from_env()?;
        let shutdown = ms_common::shutdown::Shutdown::new();
        let app = ms_router::Application::build(cfg, shutdown.clone()).await?;
        let signal = shutdown.clone();
        tokio::spawn(async move {
            signal.signalled().await;
            signal.token.cancel();
        });
        app.run_until_stopped().await
    };
    match run.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("ms-router failed: {e:#}");
            eprintln!("ms-router failed: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
