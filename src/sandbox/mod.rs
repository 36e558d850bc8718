//! The sandbox a session's program runs in: a profile plus `nono run`'s
//! flags resolve to a `Policy` (every path with its access, the network
//! mode), which the supervisor turns into a Landlock ruleset and, with the
//! network blocked, a seccomp filter, applied by the child just before exec.
//! The supervisor itself stays outside.

pub mod bpf;
pub mod landlock;
pub mod namespaces;
pub mod notify;
pub mod profile;
pub mod seccomp;

use crate::error::{Error, Result};
use crate::registry::{PathGrant, SandboxInfo};
use crate::sys::Confinement;
use profile::Workdir;
use std::path::{Path, PathBuf};

/// Access bit: read files, list directories, execute.
pub const READ: u8 = 1;
/// Access bit: write, create, remove, rename.
pub const WRITE: u8 = 2;

/// The word for an access in output and records.
pub fn access_name(access: u8) -> &'static str {
    match access & (READ | WRITE) {
        READ => "read",
        WRITE => "write",
        _ => "read-write",
    }
}

/// One granted path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Canonical path (symlinks resolved, as Landlock sees it).
    pub path: PathBuf,
    /// READ and/or WRITE.
    pub access: u8,
    /// Who granted it: profile names, flags, `workdir`.
    pub from: Vec<String>,
}

/// A profile path that does not exist here, so grants nothing.
#[derive(Clone, Debug)]
pub struct Skipped {
    /// The path as resolved (or as written, when it could not be).
    pub path: String,
    /// The profile that lists it.
    pub from: String,
    /// Why it was skipped.
    pub why: String,
    /// The access it would have had.
    pub access: u8,
}

/// What `nono run` asked for on its command line.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// `--profile` (default: `default`).
    pub profile: Option<String>,
    /// `--allow-cwd`.
    pub allow_cwd: bool,
    /// `-a/--allow` paths (read-write).
    pub allow: Vec<String>,
    /// `-r/--read` paths.
    pub read: Vec<String>,
    /// `-w/--write` paths.
    pub write: Vec<String>,
    /// `--net`: Some(true) for blocked.
    pub net_blocked: Option<bool>,
    /// `--env NAME`: scrubbed variables to pass on purpose.
    pub env: Vec<String>,
    /// `--require-namespaces`.
    pub require_namespaces: bool,
    /// `--ask`: Some(true) asks whatever the profile says.
    pub ask: Option<bool>,
}

/// A fully resolved sandbox policy (the default grants nothing and turns
/// nothing on; profiles add to it).
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// The profile as named (`default`, `claude-code`, a path).
    pub profile: String,
    /// The profile and those it extends: (name, origin).
    pub chain: Vec<(String, String)>,
    /// The profile's description.
    pub description: String,
    /// Granted paths, merged per path, sorted.
    pub rules: Vec<Rule>,
    /// Profile paths that do not exist here.
    pub skipped: Vec<Skipped>,
    /// What the working directory gets.
    pub workdir: Workdir,
    /// Whether the network is blocked.
    pub network_blocked: bool,
    /// Whether opens outside the grant wait for approval (`--ask`, `approvals.ask`).
    pub ask: bool,
    /// `[rollback] enabled` of the last profile that sets it.
    pub rollback: bool,
    /// `[rollback] exclude` of every profile in the chain.
    pub rollback_exclude: Vec<String>,
    /// The session's private temporary directory, once the supervisor made
    /// it (only where /tmp is not the session's own).
    pub tmpdir: Option<PathBuf>,
    /// Scrubbed variables passed on purpose: (name, who passed it).
    pub env_pass: Vec<(String, String)>,
    /// Refuse to start without namespace containment.
    pub require_namespaces: bool,
}

/// Variables that lead to the user's agents, buses, displays, terminal
/// multiplexers and editors: a program holding one can reach a process
/// outside the sandbox that acts with the user's full access (sign with
/// their keys, start programs, type into their terminals). Dropped from the
/// program's environment unless passed on purpose.
pub const SCRUBBED_ENV: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "GNOME_KEYRING_CONTROL",
    "DBUS_SESSION_BUS_ADDRESS",
    "DBUS_SYSTEM_BUS_ADDRESS",
    "DISPLAY",
    "XAUTHORITY",
    "WAYLAND_DISPLAY",
    "WAYLAND_SOCKET",
    "XDG_RUNTIME_DIR",
    "SESSION_MANAGER",
    "PULSE_SERVER",
    "PIPEWIRE_REMOTE",
    "KRB5CCNAME",
    "TMUX",
    "TMUX_PANE",
    "STY",
    "KITTY_LISTEN_ON",
    "WEZTERM_UNIX_SOCKET",
    "ALACRITTY_SOCKET",
    "SWAYSOCK",
    "I3SOCK",
    "HYPRLAND_INSTANCE_SIGNATURE",
    "NVIM",
    "NVIM_LISTEN_ADDRESS",
    "VSCODE_IPC_HOOK_CLI",
    "VSCODE_GIT_IPC_HANDLE",
    "DOCKER_HOST",
];

/// Whether `name` is a plausible environment variable name.
pub fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Policy {
    /// The scrubbed variables set in this environment that the program
    /// will not see.
    pub fn env_dropped(&self) -> Vec<&'static str> {
        SCRUBBED_ENV
            .iter()
            .copied()
            .filter(|n| std::env::var_os(n).is_some())
            .filter(|n| !self.env_pass.iter().any(|(p, _)| p == n))
            .collect()
    }
}

/// Expand `~` and `~/…`; a relative path joins `base` when given and is an
/// error otherwise.
pub fn expand(text: &str, base: Option<&Path>) -> std::result::Result<PathBuf, String> {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| format!("'{text}': HOME is not set, so ~ cannot be expanded"))
    };
    if text == "~" {
        return home();
    }
    if let Some(rest) = text.strip_prefix("~/") {
        return Ok(home()?.join(rest));
    }
    if text.starts_with('~') {
        return Err(format!("'{text}': only ~ and ~/ are expanded, not ~user"));
    }
    let p = Path::new(text);
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    match base {
        Some(b) => Ok(b.join(p)),
        None => Err(format!("'{text}' must be an absolute path")),
    }
}

/// `path` with symlinks resolved as far as it exists, the rest appended:
/// where a directory that may not exist yet would be.
fn lenient_canonical(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut p = path.to_path_buf();
    loop {
        if let Ok(c) = p.canonicalize() {
            return missing
                .iter()
                .rev()
                .fold(c, |acc, m: &std::ffi::OsString| acc.join(m));
        }
        match (p.file_name().map(|f| f.to_os_string()), p.parent()) {
            (Some(f), Some(parent)) => {
                missing.push(f);
                p = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

impl Policy {
    /// Add a grant, keeping `rules` sorted by path and one rule per path
    /// (kept sorted by insertion: a sort here would cost the binary more).
    pub(crate) fn grant(&mut self, path: PathBuf, access: u8, from: &str) {
        match self.rules.binary_search_by(|r| r.path.cmp(&path)) {
            Ok(i) => {
                let r = &mut self.rules[i];
                r.access |= access;
                if !r.from.iter().any(|f| f == from) {
                    r.from.push(from.to_string());
                }
            }
            Err(i) => self.rules.insert(
                i,
                Rule {
                    path,
                    access,
                    from: vec![from.to_string()],
                },
            ),
        }
    }

    /// Whether `path` (canonical) is reachable with at least `access`.
    pub fn allows(&self, path: &Path, access: u8) -> bool {
        self.rules
            .iter()
            .any(|r| path.starts_with(&r.path) && r.access & access == access)
    }
}

/// Resolve a request against its profile. `cwd` is the caller's directory
/// (None for `profile show`, where the working directory is not known).
pub fn resolve(req: &Request, cwd: Option<&Path>) -> Result<Policy> {
    let spec = req.profile.clone().unwrap_or_else(|| "default".into());
    let chain = profile::load_chain(&spec)?;
    let mut policy = Policy {
        profile: spec,
        chain: chain
            .iter()
            .map(|p| (p.name.clone(), p.origin.clone()))
            .collect(),
        description: chain[0].description.clone(),
        ..Policy::default()
    };
    // The profile that extends nothing first; each one below may add paths
    // and override the working directory and network settings.
    for p in chain.iter().rev() {
        for e in &p.entries {
            let access = e.access;
            let path = expand(&e.text, None)
                .map_err(|m| Error::Msg(format!("{}: line {}: {m}", p.origin, e.line)))?;
            match path.canonicalize() {
                Ok(c) => policy.grant(c, access, &p.name),
                Err(err) => policy.skipped.push(Skipped {
                    path: path.display().to_string(),
                    from: p.name.clone(),
                    access,
                    why: if err.kind() == std::io::ErrorKind::NotFound {
                        "does not exist".into()
                    } else {
                        err.to_string()
                    },
                }),
            }
        }
        if let Some(w) = p.workdir {
            policy.workdir = w;
        }
        if let Some(n) = p.net_blocked {
            policy.network_blocked = n;
        }
        if let Some(r) = p.namespaces_required {
            policy.require_namespaces = r;
        }
        for name in &p.env_pass {
            policy.pass_env(name, &p.name);
        }
        if let Some(a) = p.ask {
            policy.ask = a;
        }
        if let Some(r) = p.rollback {
            policy.rollback = r;
        }
        policy
            .rollback_exclude
            .extend(p.rollback_exclude.iter().cloned());
    }
    for name in &req.env {
        if !env_name_ok(name) {
            return Err(Error::Usage(format!(
                "--env {name:?}: not a variable name (letters, digits and _)"
            )));
        }
        policy.pass_env(name, "--env");
    }
    policy.require_namespaces |= req.require_namespaces;
    for (list, access, flag) in [
        (&req.allow, READ | WRITE, "--allow"),
        (&req.read, READ, "--read"),
        (&req.write, WRITE, "--write"),
    ] {
        for text in list {
            let path = expand(text, cwd).map_err(|m| Error::Usage(format!("{flag} {m}")))?;
            let c = path
                .canonicalize()
                .map_err(|e| Error::Msg(format!("{flag} {text}: {}: {e}", path.display())))?;
            policy.grant(c, access, flag);
        }
    }
    if req.allow_cwd {
        policy.workdir = Workdir::ReadWrite;
    }
    if let Some(n) = req.net_blocked {
        policy.network_blocked = n;
    }
    if let Some(a) = req.ask {
        policy.ask = a;
    }
    if let Some(cwd) = cwd {
        let access = match policy.workdir {
            Workdir::None => 0,
            Workdir::Read => READ,
            Workdir::ReadWrite => READ | WRITE,
        };
        if access != 0 {
            let c = cwd
                .canonicalize()
                .map_err(|e| Error::io("cannot resolve the working directory", e))?;
            policy.grant(c, access, "workdir");
        }
    }
    check_forbidden(&policy)?;
    check_profiles_out_of_reach(&policy)?;
    Ok(policy)
}

impl Policy {
    /// Pass a scrubbed variable on purpose (once per name).
    fn pass_env(&mut self, name: &str, from: &str) {
        if !self.env_pass.iter().any(|(n, _)| n == name) {
            self.env_pass.push((name.to_string(), from.to_string()));
        }
    }
}

/// A profile the program could write would decide its own next sandbox:
/// refuse every profile file of the chain that a writable grant reaches.
fn check_profiles_out_of_reach(policy: &Policy) -> Result<()> {
    for (name, origin) in &policy.chain {
        if origin == "built-in" {
            continue;
        }
        let file = lenient_canonical(Path::new(origin));
        let Some(r) = policy
            .rules
            .iter()
            .find(|r| r.access & WRITE != 0 && file.starts_with(&r.path))
        else {
            continue;
        };
        let by = match r.from[0].as_str() {
            "workdir" => "the working directory".to_string(),
            f => f.to_string(),
        };
        return Err(Error::Msg(format!(
            "profile '{name}' ({}) lies inside {}, which this sandbox grants write access to ({by}), so the program could rewrite its own next sandbox: keep the profile outside every writable grant",
            file.display(),
            r.path.display()
        )));
    }
    Ok(())
}

/// nono's own state directory, where it would be.
fn state_dir() -> Option<PathBuf> {
    crate::registry::state_dir()
        .ok()
        .map(|d| lenient_canonical(&d))
}

/// The state directory is never granted (records, sockets and logs of
/// every session live there), and nono's configuration is never writable
/// (a program that could edit profiles would choose its next sandbox).
fn check_forbidden(policy: &Policy) -> Result<()> {
    let overlaps = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    let state = state_dir();
    let config = crate::config::config_dir().map(|d| lenient_canonical(&d));
    // A path that does not exist yet would still be a grant once created.
    let skipped: Vec<Rule> = policy
        .skipped
        .iter()
        .map(|s| Rule {
            path: lenient_canonical(Path::new(&s.path)),
            access: s.access,
            from: vec![s.from.clone()],
        })
        .collect();
    for r in policy.rules.iter().chain(&skipped) {
        let p = r.path.display();
        let (who, fix) = match r.from[0].as_str() {
            f if f.starts_with("--") => (format!("{f} {p}"), "grant narrower paths"),
            "workdir" => (
                format!("the working directory {p}"),
                "start the session from a project directory",
            ),
            name => (format!("profile '{name}' ({p})"), "grant narrower paths"),
        };
        let relation = |other: &Path| {
            if r.path == other {
                "is"
            } else if other.starts_with(&r.path) {
                "contains"
            } else {
                "is inside"
            }
        };
        if let Some(state) = state.as_ref().filter(|s| overlaps(&r.path, s)) {
            return Err(Error::Msg(format!(
                "{who} {} nono's state directory {}, which a sandboxed program may never reach: {fix}",
                relation(state),
                state.display()
            )));
        }
        if let Some(cfg) = config.as_ref().filter(|c| overlaps(&r.path, c)) {
            if r.access & WRITE != 0 {
                return Err(Error::Msg(format!(
                    "{who} {} nono's configuration {}, which a sandboxed program may not write (it could widen its own next sandbox): {fix}, or grant it read-only",
                    relation(cfg),
                    cfg.display()
                )));
            }
        }
    }
    Ok(())
}

/// Make a session's private temporary directory under `$TMPDIR` (or
/// /tmp), with a random name (the program is not told its session id):
/// created 0700 by mkdir, which fails rather than follow anything already
/// there.
pub fn make_tmpdir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let random = crate::registry::new_id().map_err(|e| std::io::Error::other(e.to_string()))?;
    let path = std::env::temp_dir().join(format!("nono-{random}"));
    std::fs::DirBuilder::new().mode(0o700).create(&path)?;
    path.canonicalize()
}

/// Remove a session's temporary directory, if it is one nono made: a real
/// directory (not a symlink) named `nono-…` and owned by us.
pub fn remove_tmpdir(path: &str) {
    use std::os::unix::fs::MetadataExt;
    let p = Path::new(path);
    let named = p
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("nono-"));
    let ours =
        std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == crate::sys::geteuid());
    if named && ours {
        // std's remove_dir_all does not follow symlinks inside the tree.
        let _ = std::fs::remove_dir_all(p);
    }
}

/// Check that this kernel can enforce `policy`; the Landlock ABI to use.
/// Fails closed: without Landlock the session does not start.
pub fn prepare(policy: &Policy) -> std::result::Result<u32, String> {
    let abi =
        landlock::abi().map_err(|m| format!("cannot sandbox the session: {m}{NOT_STARTED}"))?;
    if policy.network_blocked && !seccomp::SUPPORTED {
        return Err(format!(
            "cannot block the network: nono has no seccomp filter for this architecture{NOT_STARTED}"
        ));
    }
    Ok(abi)
}

/// Appended to every refusal to sandbox.
const NOT_STARTED: &str = "; nothing was started (--no-sandbox starts the program unconfined)";

/// The policy as applied: the profile's grants plus the session's private
/// temporary directory, when it has one.
pub fn applied(policy: &Policy) -> Policy {
    let mut rules = policy.clone();
    if let Some(t) = &policy.tmpdir {
        rules.grant(t.clone(), READ | WRITE, "tmpdir");
    }
    rules
}

/// Build what the program applies before exec, from the applied policy, as
/// paths resolve where this runs (inside the session's mount namespace,
/// when it has one). Fails closed when a rule cannot be applied.
pub fn confinement(applied: &Policy, abi: u32) -> std::result::Result<Confinement, String> {
    let ruleset = landlock::ruleset(applied, abi)
        .map_err(|m| format!("cannot sandbox the session: {m}{NOT_STARTED}"))?;
    Ok(Confinement {
        landlock: Some(ruleset),
        seccomp: applied.network_blocked.then(seccomp::network_filter),
        ..Confinement::default()
    })
}

/// The record's account of the applied policy.
pub fn info(applied: &Policy, abi: u32, tmpdir: Option<String>) -> SandboxInfo {
    SandboxInfo {
        landlock_abi: abi,
        enforced: landlock::protections(abi, applied.network_blocked)
            .into_iter()
            .map(String::from)
            .collect(),
        tmpdir,
        paths: applied
            .rules
            .iter()
            .map(|r| PathGrant {
                path: r.path.display().to_string(),
                access: access_name(r.access).into(),
            })
            .collect(),
    }
}

/// Build what the child applies before exec, and the record's account of
/// it, in the supervisor's own view (sessions without namespaces).
pub fn confine(policy: &Policy) -> std::result::Result<(Confinement, SandboxInfo), String> {
    let abi = prepare(policy)?;
    let rules = applied(policy);
    let confinement = confinement(&rules, abi)?;
    let tmpdir = policy.tmpdir.as_ref().map(|t| t.display().to_string());
    Ok((confinement, info(&rules, abi, tmpdir)))
}

/// The resolution in words, for `nono profile show` and `nono run --dry-run`.
pub fn describe(policy: &Policy, cwd: Option<&Path>) -> String {
    let mut out = String::new();
    let chain: Vec<String> = policy
        .chain
        .iter()
        .map(|(n, o)| format!("{n} ({o})"))
        .collect();
    out.push_str(&format!("Profile:   {}\n", chain.join(", extends ")));
    if !policy.description.is_empty() {
        out.push_str(&format!("           {}\n", policy.description));
    }
    out.push_str(&format!(
        "Network:   {}\n",
        if policy.network_blocked {
            "blocked (TCP by Landlock where the kernel can; every socket family but Unix by seccomp)"
        } else {
            "allowed"
        }
    ));
    if policy.ask {
        out.push_str(
            "Ask:       opens outside the grant wait for approval (nono approve, or keys while attached)\n",
        );
    }
    let wd = match (policy.workdir, cwd) {
        (Workdir::None, _) => "not granted (--allow-cwd grants it)".to_string(),
        (w, Some(c)) => format!("{} {}", w.as_str(), c.display()),
        (w, None) => format!("{} (the directory the session starts in)", w.as_str()),
    };
    out.push_str(&format!("Workdir:   {wd}\n"));
    if policy.rollback || !policy.rollback_exclude.is_empty() {
        let mut rb = String::from(if policy.rollback {
            "enabled: writable directories are captured before start"
        } else {
            "off (--rollback turns it on)"
        });
        if !policy.rollback_exclude.is_empty() {
            rb.push_str(&format!(
                "; excluded: {}",
                policy.rollback_exclude.join(" ")
            ));
        }
        out.push_str(&format!("Rollback:  {rb}\n"));
    }
    out.push_str("Paths:\n");
    let width = policy
        .rules
        .iter()
        .map(|r| r.path.as_os_str().len())
        .chain(policy.skipped.iter().map(|s| s.path.len()))
        .max()
        .unwrap_or(0)
        .max(24);
    for r in &policy.rules {
        out.push_str(&format!(
            "  {:<10}  {:<width$}  {}\n",
            access_name(r.access),
            r.path.display().to_string(),
            r.from.join(", ")
        ));
    }
    for (path, what) in [
        (
            "/tmp, /dev/shm",
            "private, empty, gone with the session (namespaces)",
        ),
        ("/dev/pts", "the session's own terminals (namespaces)"),
        (
            "$TMPDIR/nono-<random>",
            "without namespaces: a private TMPDIR, removed when the session ends",
        ),
        (
            "/dev/pts/<N>",
            "without namespaces: the session's terminal only",
        ),
    ] {
        out.push_str(&format!(
            "  {:<10}  {:<width$}  {what}\n",
            "read-write", path
        ));
    }
    if !policy.skipped.is_empty() {
        out.push_str("Skipped (not granted):\n");
        for s in &policy.skipped {
            out.push_str(&format!("  {:<width$}  {}: {}\n", s.path, s.from, s.why));
        }
    }
    if let Some(s) = state_dir() {
        out.push_str(&format!(
            "Never:     {} (nono's state directory)\n",
            s.display()
        ));
    }
    out.push_str(&format!(
        "Containment: {}\n",
        if policy.require_namespaces {
            "namespaces (required: the session does not start without them)"
        } else {
            "namespaces where the kernel allows them, else descendants"
        }
    ));
    out.push_str(
        "  namespaces:  own user, PID and mount namespaces; nothing the program starts outlives\n\
         \x20              the session (even kill -9 of the supervisor); its own /proc, terminals,\n\
         \x20              /tmp and /dev/shm; nono's state and config and /run/user/<uid> masked;\n\
         \x20              no user namespaces of its own\n\
         \x20 descendants: the supervisor ends every descendant it finds when the session ends\n\
         \x20              (not after kill -9 of it); the host's /proc, /tmp sockets and\n\
         \x20              /run/user reachable by path (Landlock does not cover connect); no new\n\
         \x20              terminals (script, tmux, pty.spawn fail: only the session's own pty)\n",
    );
    let dropped = policy.env_dropped();
    out.push_str(&format!(
        "Environment: scrubbed of {}\n",
        SCRUBBED_ENV.join(" ")
    ));
    out.push_str(&format!(
        "  dropped here: {}\n",
        if dropped.is_empty() {
            "none of them is set".to_string()
        } else {
            dropped.join(" ")
        }
    ));
    let passed: Vec<String> = policy
        .env_pass
        .iter()
        .map(|(n, from)| format!("{n} ({from})"))
        .collect();
    out.push_str(&format!(
        "  passed on purpose: {}\n",
        if passed.is_empty() {
            "none (--env NAME, or [environment] pass in a profile)".to_string()
        } else {
            passed.join(", ")
        }
    ));
    match landlock::abi() {
        Ok(abi) => {
            out.push_str(&format!("Kernel:    Landlock ABI {abi}\n"));
            out.push_str(&format!(
                "Enforced:  {}\n",
                landlock::protections(abi, policy.network_blocked).join(", ")
            ));
            out.push_str("Not restricted:\n");
            for n in landlock::not_enforced(abi, policy.network_blocked) {
                out.push_str(&format!("  {n}\n"));
            }
        }
        Err(m) => out.push_str(&format!(
            "Kernel:    {m}: a session with this policy will not start (--no-sandbox starts it unconfined)\n"
        )),
    }
    out
}
