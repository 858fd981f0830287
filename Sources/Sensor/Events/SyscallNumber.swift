/// The x86_64 numbers of the syscalls the sensor and enforcement name in code, read from the
/// generated event table (Scripts/generators/generate-syscall-table.py, from asm/unistd_64.h, the header
/// the BPF programs include for their `__NR_*`), so no number is written by hand.
public enum SyscallNumber {
    public static let open = number("open")
    public static let creat = number("creat")
    public static let openat = number("openat")
    public static let openat2 = number("openat2")
    public static let connect = number("connect")
    public static let bind = number("bind")
    public static let sendto = number("sendto")
    public static let sendmsg = number("sendmsg")

    /// The number of a syscall the generated table must hold (a missing one is a build defect).
    static func number(_ name: String) -> Int32 {
        guard let definition = EventTable.definition(named: name), definition.id >= 0, definition.id < 512 else {
            preconditionFailure("syscall \(name) is not in the generated event table")
        }
        return definition.id
    }
}
