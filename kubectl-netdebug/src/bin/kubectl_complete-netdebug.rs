//! kubectl's plugin completion helper (kubectl 1.26+): `kubectl netdebug <TAB>` makes kubectl
//! run `kubectl_complete-netdebug ARGS... PARTIAL` and read cobra's `__complete` answer (one
//! candidate per line, then `:DIRECTIVE`). Same code as `kubectl-netdebug __complete`.
//!
//! It always exits 0, within a few seconds; on any error it prints only the directive.

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    kubectl_netdebug::complete::run(&args)
}
