//! The Lua scripts. Each is `lua/lib.lua` (shared helpers) followed by its own body, built
//! into the binary; `Script::invoke_async` calls it by SHA and loads it after `NOSCRIPT`
//! (a restarted or failed-over Redis has an empty script cache).

use std::sync::LazyLock;

use redis::Script;

macro_rules! script {
    ($name:ident, $file:literal) => {
        pub(crate) static $name: LazyLock<Script> = LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../lua/lib.lua"),
                include_str!(concat!("../lua/", $file))
            ))
        });
    };
}

script!(ENQUEUE, "enqueue.lua");
script!(ENQUEUE_PLAIN, "enqueue_plain.lua");
script!(CLAIM, "claim.lua");
script!(HEARTBEAT, "heartbeat.lua");
script!(COMPLETE, "complete.lua");
script!(FAIL, "fail.lua");
script!(RELEASE, "release.lua");
script!(CANCEL, "cancel.lua");
script!(RETRY, "retry.lua");
script!(RESCUE, "rescue.lua");
script!(PRUNE, "prune.lua");
script!(STATS, "stats.lua");
script!(PEEK, "peek.lua");
script!(LIST, "list.lua");
script!(LEADER, "leader.lua");
script!(PAUSE, "pause.lua");
script!(INDEX, "index.lua");
