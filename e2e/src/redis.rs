//! A real `redis-server` for tests: started on a free port with nothing
//! persisted, killed (SIGKILL), frozen (SIGSTOP) and resumed (SIGCONT) on
//! demand, restarted on the same port.
//!
//! `make test` installs `redis-server`; without it [`RedisServer::start`]
//! fails and says what to install, so a test needing Redis never passes
//! without one.

use crate::error::HarnessError;
use crate::process::{Proc, free_port};
use rustix::process::{Pid, Signal, kill_process_group};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    password: Option<String>,
    proc: Option<Proc>,
}

impl RedisServer {
    /// Starts a server on a free port.
    ///
    /// # Errors
    ///
    /// When `redis-server` is not installed or does not answer `PING`.
    pub fn start() -> Result<RedisServer, HarnessError> {
        RedisServer::start_with(None)
    }

    /// Starts a server that requires `password`.
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`].
    pub fn start_with(password: Option<&str>) -> Result<RedisServer, HarnessError> {
        let mut server = RedisServer {
            port: free_port()?,
            password: password.map(str::to_string),
            proc: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// The `redis://` URL of the server (without the password).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on its port (after [`RedisServer::kill`]).
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        let program = program()?;
        let port = self.port.to_string();
        let mut args = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ];
        if let Some(password) = &self.password {
            args.extend(["--requirepass", password.as_str()]);
        }
        let proc = Proc::spawn_program(&program, "redis-server", args, [("LANG", "C")])?;
        self.proc = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .command(&["PING"])
                .is_ok_and(|r| r.contains("PONG") || r.contains("NOAUTH"))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(HarnessError::Timeout {
            url: self.url(),
            timeout: Duration::from_secs(10),
            last: "no PONG".into(),
        })
    }

    /// SIGKILLs the server (it is gone at once, mid-request).
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            if let Some(pid) = Pid::from_raw(proc.pid() as i32) {
                let _ = kill_process_group(pid, Signal::KILL);
            }
            proc.stop();
        }
    }

    /// SIGSTOPs the server: connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.signal(Signal::STOP);
    }

    /// SIGCONTs a frozen server.
    pub fn thaw(&self) {
        self.signal(Signal::CONT);
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self
            .proc
            .as_ref()
            .and_then(|p| Pid::from_raw(p.pid() as i32))
        {
            let _ = kill_process_group(pid, signal);
        }
    }

    /// Sends one command (inline protocol) and returns the raw reply.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub fn command(&self, words: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut request = String::new();
        if let Some(password) = &self.password {
            request.push_str(&format!("AUTH {password}\r\n"));
        }
        request.push_str(&words.join(" "));
        request.push_str("\r\nQUIT\r\n");
        stream.write_all(request.as_bytes())?;
        let mut reply = String::new();
        stream.read_to_string(&mut reply)?;
        Ok(reply)
    }

    /// How many times `command` (lowercase, e.g. `evalsha`) ran, from
    /// `INFO commandstats`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub fn calls(&self, command: &str) -> std::io::Result<u64> {
        let info = self.command(&["INFO", "commandstats"])?;
        let prefix = format!("cmdstat_{command}:calls=");
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
    }
}

/// `redis-server` on `PATH`.
fn program() -> Result<PathBuf, HarnessError> {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("redis-server"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| HarnessError::Spawn {
            what: "redis-server (install it: `make test` does, or apt-get install redis-server)"
                .into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}
