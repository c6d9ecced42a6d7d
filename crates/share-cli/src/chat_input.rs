//! Lines typed by the user (or written to stdin with `--json`): chat messages and the
//! commands `/nick NAME`, `/peers`, `/msg NICK TEXT`, `/quit`. A nickname that several
//! connected peers share is shown (and taken by `/msg`) as `nick#id`; `nick@ADDR` works too.

use serde_json::json;
use share_engine::Torrent;

use crate::render::Render;

/// What a line asks for beyond sending.
pub enum After {
    /// Keep going.
    Continue,
    /// `/quit`.
    Quit,
}

/// Acts on one line of input. With several transfers in the process a message goes to every
/// swarm, `/nick` renames us in all, `/msg` goes to the first swarm that has the nickname,
/// and `/peers` lists every swarm's peers.
/// Unix milliseconds now.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn handle(torrents: &[Torrent], render: &Render, line: &str) -> After {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return After::Continue;
    }
    let (cmd, rest) = match line.strip_prefix('/') {
        Some(c) => c.split_once(' ').map_or((c, ""), |(c, r)| (c, r.trim())),
        None => ("", line),
    };
    match cmd {
        "" => {
            let written = now_ms();
            match to_every(torrents, |t| t.say_at(rest, written)) {
                Ok(()) => render.own_chat(rest, None),
                Err(e) => render.problem("chat_error", &format!("not sent: {e}")),
            }
        }
        "quit" => return After::Quit,
        "nick" if !rest.is_empty() => {
            let nick = torrents
                .iter()
                .map(|t| t.set_nick(rest))
                .next()
                .unwrap_or_default();
            render.emit(json!({"event": "nick", "nick": nick}), || {
                Some(format!("you are now {nick}"))
            });
        }
        "msg" => match rest.split_once(' ') {
            Some((nick, text)) if !text.trim().is_empty() => {
                match first_ok(torrents, |t| t.say_to(nick, text)) {
                    Ok(()) => render.own_chat(text, Some(nick)),
                    Err(e) => render.problem("chat_error", &format!("not sent: {e}")),
                }
            }
            _ => render.problem("chat_error", "usage: /msg NICK TEXT"),
        },
        "peers" => {
            let peers: Vec<_> = torrents.iter().flat_map(Torrent::peers).collect();
            let list: Vec<_> = peers
                .iter()
                .map(|p| {
                    json!({
                        "addr": p.addr, "peer_id": p.peer_id.to_string(), "nick": p.nick, "handle": p.handle,
                        "client": p.client,
                        "pieces": p.pieces, "total": p.total, "chat": p.chat,
                    })
                })
                .collect();
            render.emit(json!({"event": "peers", "peers": list}), || {
                let mut out = format!(
                    "{} peer{} connected",
                    peers.len(),
                    if peers.len() == 1 { "" } else { "s" }
                );
                for p in &peers {
                    let pct = if p.total == 0 {
                        0.0
                    } else {
                        100.0 * f64::from(p.pieces) / f64::from(p.total)
                    };
                    out.push_str(&format!(
                        "\n  {:<16} {:<22} {:<18} {:>5.1}%",
                        p.handle.as_deref().unwrap_or("-"),
                        p.addr,
                        p.client.as_deref().unwrap_or("?"),
                        pct
                    ));
                }
                Some(out)
            });
        }
        _ => render.problem(
            "chat_error",
            "commands: /nick NAME, /peers, /msg NICK TEXT, /quit",
        ),
    }
    After::Continue
}

/// Runs `send` on each torrent until one takes it: `Ok` then, else the first one's error.
fn first_ok<E>(torrents: &[Torrent], mut send: impl FnMut(&Torrent) -> Result<(), E>) -> Result<(), E> {
    let mut first = None;
    for t in torrents {
        match send(t) {
            Ok(()) => return Ok(()),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Runs `send` on every torrent: `Ok` if one took it, else the first torrent's error.
fn to_every<E>(torrents: &[Torrent], send: impl Fn(&Torrent) -> Result<(), E>) -> Result<(), E> {
    let results: Vec<_> = torrents.iter().map(send).collect();
    if results.iter().any(Result::is_ok) {
        return Ok(());
    }
    results.into_iter().find_map(Result::err).map_or(Ok(()), Err)
}
