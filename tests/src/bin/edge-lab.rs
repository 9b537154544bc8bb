//! `cargo xtask lab up | status | demo [--keep] | down`: a whole anycast
//! CDN in network namespaces (see `edge_tests::lab` and docs/lab.md).
//! `demo` brings the lab up if it is not, plays the scenarios with a
//! timeline and a summary, takes the lab down unless `--keep`, and exits
//! non-zero if any scenario did not behave as the design says.

use std::process::ExitCode;

use edge_tests::lab::{Lab, configs::POPS, scenarios};

fn main() -> ExitCode {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("the lab creates network namespaces and loads XDP: run it as root");
        return ExitCode::FAILURE;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let lab = match Lab::new() {
        Ok(lab) => lab,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match args.first().map(String::as_str) {
        Some("up") => match lab.up() {
            Ok(()) => {
                println!(
                    "the lab is up: `cargo xtask lab status`, `cargo xtask lab demo --keep`, `cargo xtask lab down`"
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Some("status") => {
            for pop in POPS {
                println!("== {} ==\n{}", pop.name, lab.status_text(pop.name));
            }
            ExitCode::SUCCESS
        }
        Some("down") => {
            lab.down();
            println!("the lab is down");
            ExitCode::SUCCESS
        }
        Some("demo") => {
            let keep = args.iter().any(|a| a == "--keep");
            let ready = if lab.wait_ready(std::time::Duration::from_secs(1)).is_ok() {
                Ok(())
            } else {
                println!("bringing the lab up (BIRD, three PoPs, two clients)…");
                lab.up()
            };
            let code = match ready {
                Ok(()) => {
                    let outcomes = scenarios::demo(&lab, &mut |line| println!("{line}"));
                    println!("{}", scenarios::summary(&outcomes));
                    if outcomes.iter().all(|o| o.passed) {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            };
            if !keep {
                lab.down();
            }
            code
        }
        _ => {
            eprintln!("usage: edge-lab up | status | demo [--keep] | down");
            ExitCode::FAILURE
        }
    }
}
