import FHIRServer

/// Denial of service and exfiltration: a fork bomb inside the FHIR container, and two attacks
/// from the host through the FHIR API that syscall monitoring can only watch go by; the bulk
/// read is caught by the FHIR server's audit trail instead (`ExfiltrationDetector`).
extension AttackScenario {
    static let impact: [AttackScenario] = [
        // T1499 Endpoint Denial of Service: ATT&CK files fork bombs there (T1496 is resource
        // hijacking for the attacker's own use, such as mining).
        .init(
            "fork-bomb", "Fork bomb held by the pids limit", tactic: "impact", technique: "T1499", expects: ["CAD-048"],
            command: forkBombScript(holdSeconds: 3),
            note:
                "the container's pids limit holds it (the lab refuses to play it without one); bounded to 3 s, then unwound",
            play: .forkBomb),
        .init(
            "request-flood", "HTTP request flood", tactic: "impact", technique: "T1499.002", expects: [],
            command: "64 concurrent connections sending FHIR searches from the host for 3 s",
            note: "syscall rules see accepts, reads and sends, never a rate: rate limits belong at the API gateway "
                + "and in Caduceus's audited access (issue 7), which knows who is asking",
            play: .requestFlood),
        // T1213 Data from Information Repositories: the FHIR server is the repository and its
        // own search API is the way in. The records leave in the API's own answers, so
        // collection and exfiltration are one act here; ATT&CK's exfiltration techniques name
        // other channels (T1567 uploads to a third-party web service, T1041 a C2 channel, T1530
        // cloud storage objects), none of which this is.
        .init(
            "fhir-exfiltration", "Bulk read of every patient through the FHIR API", tactic: "exfiltration",
            technique: "T1213",
            expects: [ExfiltrationDetector.ruleId],
            command: "every Patient paged out with _count and next links from the host, and each one's Observations "
                + "(patients planted first up to \(AttackLab.exfiltrationPopulation), and deleted afterwards)",
            note:
                "syscall monitoring sees the server's ordinary reads and sends and cannot tell an exfiltrating client "
                + "from a legitimate one; the FHIR server's audit trail can (serve --audit on: CAD-API-001, more than "
                + "\(ExfiltrationDetector.defaultPatientLimit) distinct patients to one client in "
                + "\(Int(ExfiltrationDetector.defaultWindow)) s), and the lab asks it through the API",
            play: .fhirExfiltration, source: .auditTrail),
    ]

    /// A fork bomb that the container's pids limit holds, bounded in time and unwound without
    /// leaving a process behind. It prints one line the lab reads:
    /// `bomb: max=… peak=… refused=… before=… after=… stop=… gone=…`.
    ///
    /// Every bomb process outlives its children, for a reason: the FHIR server is the
    /// container's pid 1 and reaps no child, so an orphan would end as a zombie holding a pid
    /// for as long as the server runs. Each process forks copies of itself while the switch file
    /// says "on"; a refused fork (EAGAIN) goes through `command eval`, which turns ash's fatal
    /// "can't fork" into a status, and is retried after 0.1 s (`read -t` on a FIFO: a builtin,
    /// where `sleep` would itself need a fork). Once `holdSeconds` have passed the controller
    /// empties the switch file (`: >`, a builtin, since no fork would succeed then); each process
    /// stops forking, waits for its children and exits, from the leaves up.
    public static func forkBombScript(holdSeconds: Int) -> String {
        """
        f=/tmp/lab-bomb; c=/sys/fs/cgroup/pids; [ -e $c/pids.max ] || c=/sys/fs/cgroup
        read max < $c/pids.max || exit 3
        case "$max" in ''|max) echo "bomb: refused: the container has no pids limit"; exit 3;; esac
        set -- /proc/[0-9]*; before=$#
        rm -f $f.fifo; mkfifo $f.fifo; : > $f.err; echo on > $f.on
        b() { while [ -s $f.on ]; do command eval 'b &' || read -t 0.1 x <> $f.fifo; done; wait; }
        sleep \(holdSeconds) & t=$!
        b 2>> $f.err & r=$!
        wait $t
        read peak < $c/pids.current
        read stop x < /proc/uptime
        : > $f.on
        wait $r
        read gone x < /proc/uptime
        set -- /proc/[0-9]*; after=$#
        echo "bomb: max=$max peak=$peak refused=$(grep -c 'Resource temporarily unavailable' $f.err) before=$before after=$after stop=$stop gone=$gone"
        rm -f $f.on $f.fifo $f.err
        """
    }
}
