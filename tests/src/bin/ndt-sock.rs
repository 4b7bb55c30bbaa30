//! `ndt-sock`: the scenario harness's TCP helper, run inside a namespace by
//! `ip netns exec`. It prints one `ready ...` line once its sockets exist, then keeps them
//! until its stdin reaches end of file (the harness holds the pipe; if the test process dies
//! the pipe closes and the helper exits on its own) or until it is killed.
//!
//! ```text
//! ndt-sock serve ADDR BACKLOG hold|close|never|drain
//!     listen on ADDR (port 0 = any) with BACKLOG; prints `ready <bound addr>`.
//!     hold: accept and keep every connection open without reading;
//!     close: accept and close at once (the peer sees FIN: CLOSE-WAIT on its side);
//!     never: never accept (connections wait in the accept queue: Recv-Q of the listener);
//!     drain: accept, read until the peer closes, then close (the peer ends in TIME-WAIT).
//! ndt-sock connect ADDR COUNT hold|close|eof-close
//!     open COUNT connections to ADDR; prints `ready <COUNT>`.
//!     hold: keep them open, never read (if the server closes: CLOSE-WAIT here);
//!     close: close each right after connecting (active close: TIME-WAIT here);
//!     eof-close: wait for the server's FIN, then close (passive close: TIME-WAIT there).
//! ndt-sock pairs ADDR COUNT
//!     listen on ADDR and open COUNT connections to it from this process, all held open
//!     (2 x COUNT established sockets + 1 listener); prints `ready <COUNT>`.
//! ```
//! Exit status 2 with a one-line message on bad arguments or a socket error.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::exit;
use std::thread;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["serve", addr, backlog, mode] => serve(addr_arg(addr), number(backlog), mode),
        ["connect", addr, count, mode] => connect(addr_arg(addr), number(count), mode),
        ["pairs", addr, count] => pairs(addr_arg(addr), number(count)),
        _ => fail(
            "usage: ndt-sock serve ADDR BACKLOG MODE | connect ADDR COUNT MODE | pairs ADDR COUNT",
        ),
    }
}

fn serve(addr: SocketAddr, backlog: usize, mode: &str) {
    if !matches!(mode, "hold" | "close" | "never" | "drain") {
        fail(&format!(
            "unknown serve mode `{mode}` (hold|close|never|drain)"
        ));
    }
    let listener = listen(addr, backlog);
    let bound = listener.local_addr().unwrap_or(addr);
    if mode != "never" {
        let mode = mode.to_string();
        thread::spawn(move || accept_loop(listener, &mode));
        ready(&bound.to_string());
    } else {
        ready(&bound.to_string());
        // Keep the listener alive while waiting.
        wait_for_stdin_eof();
        drop(listener);
    }
    wait_for_stdin_eof();
}

fn accept_loop(listener: TcpListener, mode: &str) {
    let mut held = Vec::new();
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        match mode {
            "hold" => held.push(stream),
            "close" => drop(stream),
            _ => {
                thread::spawn(move || read_to_eof(stream));
            }
        }
    }
}

fn connect(addr: SocketAddr, count: usize, mode: &str) {
    if !matches!(mode, "hold" | "close" | "eof-close") {
        fail(&format!(
            "unknown connect mode `{mode}` (hold|close|eof-close)"
        ));
    }
    let mut held = Vec::with_capacity(count);
    for i in 0..count {
        let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
            .unwrap_or_else(|e| fail(&format!("connection {} of {count} to {addr}: {e}", i + 1)));
        match mode {
            "hold" => held.push(stream),
            "close" => drop(stream),
            _ => {
                thread::spawn(move || read_to_eof(stream));
            }
        }
    }
    ready(&count.to_string());
    wait_for_stdin_eof();
    drop(held);
}

fn pairs(addr: SocketAddr, count: usize) {
    let listener = listen(addr, 4096);
    let bound = listener.local_addr().unwrap_or(addr);
    let acceptor = thread::spawn(move || {
        let mut held = Vec::with_capacity(count);
        while held.len() < count {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(e) => fail(&format!("accept: {e}")),
            }
        }
        held
    });
    let mut clients = Vec::with_capacity(count);
    for i in 0..count {
        let stream = TcpStream::connect_timeout(&bound, CONNECT_TIMEOUT)
            .unwrap_or_else(|e| fail(&format!("connection {} of {count} to {bound}: {e}", i + 1)));
        clients.push(stream);
    }
    let servers = acceptor
        .join()
        .unwrap_or_else(|_| fail("accept thread panicked"));
    ready(&count.to_string());
    wait_for_stdin_eof();
    drop((clients, servers));
}

fn listen(addr: SocketAddr, backlog: usize) -> TcpListener {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)
        .unwrap_or_else(|e| fail(&format!("socket: {e}")));
    let _ = socket.set_reuse_address(true);
    socket
        .bind(&addr.into())
        .unwrap_or_else(|e| fail(&format!("bind {addr}: {e}")));
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket
        .listen(backlog)
        .unwrap_or_else(|e| fail(&format!("listen {addr}: {e}")));
    socket.into()
}

fn read_to_eof(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
}

fn ready(what: &str) {
    println!("ready {what}");
}

fn wait_for_stdin_eof() {
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    exit(0);
}

fn addr_arg(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("`{s}` is not an IP:PORT socket address")))
}

fn number(s: &str) -> usize {
    s.parse()
        .unwrap_or_else(|_| fail(&format!("`{s}` is not a number")))
}

fn fail(message: &str) -> ! {
    eprintln!("ndt-sock: {message}");
    exit(2)
}
