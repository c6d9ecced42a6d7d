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

/// Acts on one line of input.
pub fn handle(torrent: &Torrent, render: &Render, line: &str) -> After {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return After::Continue;
    }
    let (cmd, rest) = match line.strip_prefix('/') {
        Some(c) => c.split_once(' ').map_or((c, ""), |(c, r)| (c, r.trim())),
        None => ("", line),
    };
    match cmd {
        "" => match torrent.say(rest) {
            Ok(()) => render.own_chat(rest, None),
            Err(e) => render.problem("chat_error", &format!("not sent: {e}")),
        },
        "quit" => return After::Quit,
        "nick" if !rest.is_empty() => {
            let nick = torrent.set_nick(rest);
            render.emit(json!({"event": "nick", "nick": nick}), || {
                Some(format!("you are now {nick}"))
            });
        }
        "msg" => match rest.split_once(' ') {
            Some((nick, text)) if !text.trim().is_empty() => match torrent.say_to(nick, text) {
                Ok(()) => render.own_chat(text, Some(nick)),
                Err(e) => render.problem("chat_error", &format!("not sent: {e}")),
            },
            _ => render.problem("chat_error", "usage: /msg NICK TEXT"),
        },
        "peers" => {
            let peers = torrent.peers();
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
