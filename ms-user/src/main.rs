//! ms-user binary: configuration from the environment, run until SIGINT/SIGTERM; or
//! `ms-user admin grant|revoke EMAIL` to change an account's role and exit.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("admin") {
        return match ms_user::admin::main(&args[1..]).await {
            Ok(line) => {
                println!("{line}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ms-user admin: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
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
