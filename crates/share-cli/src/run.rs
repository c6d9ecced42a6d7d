//! What `seed`, `fetch` and `chat` share: the tokio runtime, signals, the embedded tracker,
//! the announce address, the default nickname, and the loop that renders a torrent's events
//! and reads chat input until it is time to stop.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::anyhow;
use share_engine::{Event, Torrent};
use tokio::sync::broadcast::error::RecvError;

use crate::chat_input::After;
use crate::exit::Failure;
use crate::line_edit::{Decoder, Edit, LineEditor};
use crate::render::Render;

/// A multi-threaded runtime for a command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(anyhow!("cannot start the async runtime: {e}")))?;
    // Under a file-size limit (`ulimit -f`) a write past it raises SIGXFSZ, whose default
    // action kills us; with a handler installed (tokio keeps it for the life of the process)
    // the write fails with EFBIG instead and the user gets the one-sentence error.
    const SIGXFSZ: i32 = 25; // Linux
    let _in_runtime = rt.enter();
    let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(SIGXFSZ));
    drop(_in_runtime);
    Ok(rt)
}

/// Runs a command's future to its end on a fresh runtime, then drops the runtime without
/// waiting for blocking tasks: the stdin reader of the chat input sits in a blocking `read`
/// that only returns on a line or end of input, and waiting for it would hang the exit of a
/// command stopped with Ctrl-C on a terminal. Every task that matters has ended by then
/// (`Torrent::shutdown` waits for them).
pub fn block_on(command: impl std::future::Future<Output = crate::exit::Outcome>) -> crate::exit::Outcome {
    let rt = runtime()?;
    // Ctrl-C and SIGTERM are ours from the start: one arriving before the event loop waits
    // for it (just after the `seeding` line, say) is kept for it, not fatal to the process.
    let signals = rt.block_on(async { Signals::register() });
    *SIGNALS.lock().unwrap_or_else(|e| e.into_inner()) = Some(signals);
    let outcome = rt.block_on(command);
    rt.shutdown_background();
    outcome
}

/// The process's SIGINT and SIGTERM streams, registered by [`block_on`].
static SIGNALS: std::sync::Mutex<Option<Signals>> = std::sync::Mutex::new(None);

struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    /// The first of the two signals (a stream that could not be made never completes).
    async fn wait(mut self) {
        async fn recv(s: Option<&mut tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(self.interrupt.as_mut()) => {}
            () = recv(self.terminate.as_mut()) => {}
        }
    }
}

/// Completes on Ctrl-C or SIGTERM, including one that arrived since [`block_on`] started.
pub async fn interrupted() {
    let taken = SIGNALS.lock().unwrap_or_else(|e| e.into_inner()).take();
    taken.unwrap_or_else(Signals::register).wait().await;
}

/// Takes Ctrl-C and SIGTERM now (inside a runtime); the future completes on the first.
pub fn interrupt() -> impl std::future::Future<Output = ()> + Send + 'static {
    Signals::register().wait()
}

/// Why the event loop ended.
pub enum Ended {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The download completed and the caller asked to stop then.
    Complete,
    /// A fatal error.
    Fatal(String),
}

/// Renders events and reads chat from stdin until interrupted (Ctrl-C, SIGTERM, `/quit`,
/// Ctrl-D on an empty line), a fatal error, or (with `stop_when_complete`) completion. The
/// end of input only stops the reading.
///
/// When the bars are drawn and stdin is a terminal too, keys are read one by one and the
/// line being typed is drawn under the bars (`terminal.rs`, `line_edit.rs`); otherwise (a
/// pipe, `--json`, tests) stdin is read line by line as before.
pub async fn drive(
    torrent: &Torrent,
    render: &mut Render,
    stop_when_complete: bool,
    on_complete: impl Fn(&Render),
) -> Ended {
    drive_all(
        std::slice::from_ref(torrent),
        std::slice::from_mut(render),
        None,
        stop_when_complete,
        |r, _| on_complete(r),
    )
    .await
}

/// [`drive`] for several transfers of one session: `renders[i]` shows `torrents[i]`, and the
/// last render (the one of the process, with the input line) shows what is not one
/// transfer's; with one torrent it is the same render. `total` is the bar of everything,
/// brought up to date on each progress event. With several, one torrent's fatal error is
/// shown and the others go on; the loop ends with it once none is left running, or at the
/// end as the outcome. `stop_when_complete` waits for all of them.
pub async fn drive_all(
    torrents: &[Torrent],
    renders: &mut [Render],
    total: Option<&indicatif::ProgressBar>,
    stop_when_complete: bool,
    on_complete: impl Fn(&Render, usize),
) -> Ended {
    use tokio::io::AsyncBufReadExt;
    let main = renders.len() - 1;
    let mut events = merged_events(torrents);
    let stop = interrupted();
    tokio::pin!(stop);
    let raw = (renders[main].is_terminal() && crate::terminal::stdin_is_terminal())
        .then(crate::terminal::RawInput::enable)
        .and_then(Result::ok);
    let mut input = match raw {
        Some(_) => {
            renders[main].start_input();
            Input::Keys(tokio::io::stdin())
        }
        None => Input::Lines(tokio::io::BufReader::new(tokio::io::stdin()).lines()),
    };
    let (mut decoder, mut editor) = (Decoder::default(), LineEditor::default());
    let mut complete = vec![false; torrents.len()];
    let mut chats = std::collections::VecDeque::new();
    let mut failed: Vec<Option<String>> = vec![None; torrents.len()];
    let outcome = |failed: &[Option<String>], interrupted: bool| match failed.iter().flatten().next() {
        Some(message) => Ended::Fatal(message.clone()),
        None if interrupted => Ended::Interrupted,
        None => Ended::Complete,
    };
    loop {
        let (i, event) = tokio::select! {
            () = &mut stop => return outcome(&failed, true),
            got = input.next() => {
                let render = &mut renders[main];
                let lines = match got {
                    Got::Line(line) => vec![line],
                    Got::Bytes(bytes) => {
                        let mut lines = Vec::new();
                        for key in decoder.feed(&bytes) {
                            match editor.apply(key) {
                                Edit::Unchanged => {}
                                Edit::Changed => render.show_input(&editor),
                                Edit::Submit(line) => {
                                    render.show_input(&editor);
                                    lines.push(line);
                                }
                                Edit::Quit => return outcome(&failed, true),
                            }
                        }
                        lines
                    }
                    // End of input or unreadable stdin: stop reading, keep sharing.
                    Got::End => {
                        input = Input::Ended;
                        Vec::new()
                    }
                };
                for line in lines {
                    if let After::Quit = crate::chat_input::handle(torrents, render, &line) {
                        return outcome(&failed, true);
                    }
                }
                continue;
            }
            e = events.recv() => match e {
                Some(e) => e,
                None => return Ended::Fatal("the engine stopped".into()),
            },
        };
        let Some(event) = event else {
            return Ended::Fatal("the engine stopped".into());
        };
        if torrents.len() > 1 {
            if let Event::Chat {
                from, time_ms, text, ..
            } = &event
            {
                // With several swarms a line goes to all of them: shown once, as the
                // process's (no torrent's name before it), however many swarms brought it.
                let key = (*from, *time_ms, text.clone());
                if !chats.contains(&key) {
                    if chats.len() == CHAT_SEEN {
                        chats.pop_front();
                    }
                    chats.push_back(key);
                    renders[main].event(&event);
                }
                continue;
            }
        }
        renders[i].event(&event);
        match event {
            Event::Progress(_) => {
                if let Some(bar) = total {
                    let all: Vec<_> = torrents.iter().map(Torrent::stats).collect();
                    bar.set_length(all.iter().map(|s| s.total_bytes).sum());
                    bar.set_position(all.iter().map(|s| s.have_bytes).sum());
                    let down: f64 = all.iter().map(|s| s.down_rate).sum();
                    let up: f64 = all.iter().map(|s| s.up_rate).sum();
                    bar.set_message(format!(
                        "↓ {}/s ↑ {}/s",
                        indicatif::HumanBytes(down as u64),
                        indicatif::HumanBytes(up as u64)
                    ));
                }
            }
            Event::Complete => {
                complete[i] = true;
                on_complete(&renders[i], i);
            }
            Event::Fatal(message) => {
                if torrents.len() == 1 {
                    return Ended::Fatal(message);
                }
                renders[i].println(&format!("stopped: {message}"));
                failed[i] = Some(message);
            }
            _ => {}
        }
        let running = (0..torrents.len()).filter(|&j| failed[j].is_none());
        let done = running.clone().all(|j| complete[j]);
        if running.count() == 0 || (stop_when_complete && done) {
            return outcome(&failed, false);
        }
    }
}

/// Chat lines remembered to show a line that several swarms bring only once.
const CHAT_SEEN: usize = 256;

/// The events of every torrent as one stream, each with the torrent's index: one forwarding
/// task per torrent keeps each torrent's order. `None` for a torrent whose events ended. The
/// channel is bounded: a renderer that falls behind makes the engine's bus skip events for
/// it (as one torrent's receiver always did), never a queue that grows.
fn merged_events(torrents: &[Torrent]) -> tokio::sync::mpsc::Receiver<(usize, Option<Event>)> {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    for (i, t) in torrents.iter().enumerate() {
        let mut events = t.events();
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                let e = match events.recv().await {
                    Ok(e) => Some(e),
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => None,
                };
                let end = e.is_none();
                if tx.send((i, e)).await.is_err() || end {
                    return;
                }
            }
        });
    }
    rx
}

/// The default nickname: the user's login name from `$USER` or `$LOGNAME`, else the passwd
/// entry of our uid (a service or `env -i` has neither variable), else `anon`.
pub fn default_nick() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
        .or_else(|| {
            let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
            passwd_name(&passwd, rustix::process::getuid().as_raw())
        })
        .unwrap_or_else(|| "anon".into())
}

/// The login name of `uid` in the text of `/etc/passwd` (`name:password:uid:...`).
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let uid_field = fields.nth(1)?;
        (uid_field.parse() == Ok(uid) && !name.is_empty() && !name.starts_with('#')).then(|| name.to_string())
    })
}

/// Where chat input comes from.
enum Input {
    /// Whole lines: a pipe, a file, `--json`, or a terminal without bars.
    Lines(tokio::io::Lines<tokio::io::BufReader<tokio::io::Stdin>>),
    /// Bytes of keys from a terminal in key-by-key mode.
    Keys(tokio::io::Stdin),
    /// Input has ended.
    Ended,
}

/// What one read of the input gave.
enum Got {
    Line(String),
    Bytes(Vec<u8>),
    End,
}

impl Input {
    /// The next line or keys, or never once input has ended.
    async fn next(&mut self) -> Got {
        use tokio::io::AsyncReadExt;
        match self {
            Input::Lines(lines) => match lines.next_line().await {
                Ok(Some(line)) => Got::Line(line),
                Ok(None) | Err(_) => Got::End,
            },
            Input::Keys(stdin) => {
                let mut buf = [0u8; 512];
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => Got::End,
                    Ok(n) => Got::Bytes(buf[..n].to_vec()),
                }
            }
            Input::Ended => std::future::pending().await,
        }
    }
}

/// The address to write into an embedded tracker's URL: the user's choice, else the source
/// address of the default route (the one other hosts see us by), else the first private IPv4
/// address of this host, else any non-loopback IPv4, else loopback. The first private address
/// alone is often wrong: on a host running docker it was the bridge's `172.17.0.1`.
pub fn announce_host(choice: Option<IpAddr>) -> IpAddr {
    if let Some(ip) = choice {
        return ip;
    }
    let addrs: Vec<Ipv4Addr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    choose_announce_host(default_route_source(), &addrs)
}

/// The local address the kernel would send from to a host beyond every local network. A UDP
/// socket's `connect` only picks the route and the source address: no packet is sent. The
/// target is a documentation address (RFC 5737), so nothing would be sent to a real host anyway.
fn default_route_source() -> Option<Ipv4Addr> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((Ipv4Addr::new(198, 51, 100, 1), 9)).ok()?;
    match socket.local_addr().ok()?.ip() {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    }
}

/// The choice behind [`announce_host`], given the default route's source address (if there
/// is a default route) and this host's IPv4 addresses.
fn choose_announce_host(route: Option<Ipv4Addr>, interfaces: &[Ipv4Addr]) -> IpAddr {
    let usable = |a: &Ipv4Addr| !a.is_loopback() && !a.is_link_local() && !a.is_unspecified();
    if let Some(a) = route.filter(usable) {
        return IpAddr::V4(a);
    }
    let addrs: Vec<&Ipv4Addr> = interfaces.iter().filter(|a| usable(a)).collect();
    addrs
        .iter()
        .find(|a| a.is_private())
        .or(addrs.first())
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| IpAddr::V4(**a))
}

/// Default port for peer connections (any free one if taken).
pub const DEFAULT_PEER_PORT: u16 = 6881;

/// Where to listen for peers: the port asked for (taken or not: an error then is the
/// user's to see), else 6881 when free, else any free port.
pub async fn peer_listen(port: Option<u16>) -> SocketAddr {
    let preferred = SocketAddr::from(([0, 0, 0, 0], port.unwrap_or(DEFAULT_PEER_PORT)));
    if port.is_some() {
        return preferred;
    }
    match tokio::net::TcpListener::bind(preferred).await {
        Ok(_) => preferred,
        Err(_) => SocketAddr::new(preferred.ip(), 0),
    }
}

/// Binds `preferred`, or any free port on the same address if it is taken.
pub async fn bind_or_any(preferred: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    match tokio::net::TcpListener::bind(preferred).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            tokio::net::TcpListener::bind(SocketAddr::new(preferred.ip(), 0)).await
        }
        Err(e) => Err(e),
    }
}

/// The session of a command with several transfers: one port (`listen`) and the rate limits
/// of `--max-up`/`--max-down` for all of them.
/// The session of a command of several transfers; with `state_dir`, a fetch run again
/// resumes without hashing files unchanged since (`share_engine` `persist.rs`).
pub async fn session(
    listen: SocketAddr,
    rate: &crate::rate::RateArgs,
    peer: &crate::peer_args::PeerArgs,
    state_dir: Option<std::path::PathBuf>,
) -> Result<share_engine::Session, Failure> {
    share_engine::Session::start(share_engine::SessionConfig {
        listen,
        limits: rate.limits(),
        dht: peer.dht(crate::cmd::fetch::state_dir(state_dir.clone()).as_deref()),
        state_dir,
        encryption: peer.encryption,
        lsd: !peer.no_lsd,
        ..share_engine::SessionConfig::default()
    })
    .await
    .map_err(Failure::runtime)
}

/// The widest bar label of several transfers; longer names are cut with `…`.
const LABEL_WIDTH: usize = 24;

/// One render per transfer, their bars in the order given, and the bar of their total under
/// them (on a terminal), all labelled to one width so that the bars line up.
pub fn transfer_renders(
    main: &Render,
    names: &[&str],
    torrents: &[Torrent],
) -> (Vec<Render>, Option<indicatif::ProgressBar>) {
    let labels: Vec<String> = names
        .iter()
        .map(|n| {
            let n = share_proto::sanitize::sanitize(n);
            match n.chars().count() > LABEL_WIDTH {
                true => n.chars().take(LABEL_WIDTH - 1).chain(['…']).collect(),
                false => n,
            }
        })
        .collect();
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .chain([TOTAL.len()])
        .max()
        .unwrap_or(0);
    let pad = |label: &str| format!("{label:<width$}");
    let total = main.is_terminal().then(|| main.add_total_bar(0, &pad(TOTAL)));
    let renders = names
        .iter()
        .zip(&labels)
        .zip(torrents)
        .map(|((name, label), t)| {
            let mut r = Render::transfer(main, name, &pad(label), t.id().0, total.as_ref());
            r.reserve_bar();
            r
        })
        .collect();
    (renders, total)
}

/// The label of the bar of all transfers.
const TOTAL: &str = "total";

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_announce_host_is_the_default_routes_source_not_the_first_private_address() {
        // A host with docker: the bridge comes first, the default route leaves by the LAN.
        let docker_host = [v4("127.0.0.1"), v4("172.17.0.1"), v4("192.168.1.20")];
        assert_eq!(
            choose_announce_host(Some(v4("192.168.1.20")), &docker_host),
            IpAddr::V4(v4("192.168.1.20"))
        );
        // A public address on the default route is what other hosts reach us by.
        assert_eq!(
            choose_announce_host(Some(v4("203.0.113.7")), &[v4("10.0.0.2"), v4("203.0.113.7")]),
            IpAddr::V4(v4("203.0.113.7"))
        );
    }

    #[test]
    fn without_a_usable_default_route_the_old_rule_holds() {
        let interfaces = [
            v4("127.0.0.1"),
            v4("169.254.3.4"),
            v4("203.0.113.7"),
            v4("10.0.0.2"),
        ];
        for route in [
            None,
            Some(v4("127.0.0.1")),
            Some(v4("0.0.0.0")),
            Some(v4("169.254.3.4")),
        ] {
            assert_eq!(
                choose_announce_host(route, &interfaces),
                IpAddr::V4(v4("10.0.0.2")),
                "route {route:?}: the first private address"
            );
        }
        assert_eq!(
            choose_announce_host(None, &[v4("127.0.0.1"), v4("203.0.113.7")]),
            IpAddr::V4(v4("203.0.113.7")),
            "else any non-loopback address"
        );
        assert_eq!(
            choose_announce_host(None, &[v4("127.0.0.1")]),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "else loopback"
        );
    }

    #[test]
    fn the_passwd_entry_of_the_uid_names_the_user() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n# a comment:x:7:7\n\
                      daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nbroken\nana:x:1000:1000:Ana,,,:/home/ana:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("ana"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 7), None);
        assert_eq!(passwd_name(passwd, 4242), None);
    }
}
