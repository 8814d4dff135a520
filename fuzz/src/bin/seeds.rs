//! Writes the seed corpora: `seeds REPO_DIR OUT_DIR` makes `OUT_DIR/<target>/<seed>`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [repo, out] = args.as_slice() else {
        eprintln!("usage: seeds REPO_DIR OUT_DIR (writes OUT_DIR/<target>/<seed>)");
        return ExitCode::from(2);
    };
    for (target, name, bytes) in rotcheck_fuzz::seeds::all(repo) {
        let dir = out.join(target);
        let written =
            std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(dir.join(&name), bytes));
        if let Err(e) = written {
            eprintln!("{}: cannot write seed {name}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
