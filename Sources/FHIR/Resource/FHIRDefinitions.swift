/// The definitions compiled into the binary (structures, search parameters, summaries, code
/// hierarchies), each parsed from its generated table on first use.
public enum FHIRDefinitions {
    /// Parses every table now. A server calls it before it answers: otherwise the first
    /// request to need a table pays for its parsing (the structure validator's took about 30 ms,
    /// inside the first create of an ingest).
    public static func load() {
        _ = ResourceStructureValidator.r4
        _ = InvariantCatalog.r4
        _ = ProfileValidator.r4
        _ = SearchParameterRegistry.r4
        _ = ResourceSubsetter.r4
        _ = CodeHierarchy.r4
        _ = Terminology.r4
    }
}
