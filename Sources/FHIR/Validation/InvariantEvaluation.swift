import JSON

/// How much FHIRPath work the constraints of one resource (with everything it contains) may
/// do together, beside each evaluation's own `FHIRPathLimits`.
public enum InvariantLimits {
    /// Steps shared by every constraint evaluation of one validated resource (a write, a
    /// transaction entry, a `$validate`), plus `stepsPerContext` for each element with
    /// constraints: linear in the resource's size, so a large Bundle of definitions fits while
    /// no quadratic expression (dom-3 over thousands of contained resources, ref-1 over
    /// thousands of `#` references) runs unbounded. Past it an error constraint refuses the
    /// resource as too costly (an unchecked invariant is never taken as a passed one); a
    /// warning constraint is reported as not evaluated.
    public static let stepsPerResource = 2_000_000
    /// See `stepsPerResource`.
    public static let stepsPerContext = 500
}

extension StructureWalk {
    /// Evaluates the constraints of every visited object with the FHIRPath engine (R4 core
    /// mode: not strict, `as()` on collections allowed): a `false` result is a failure,
    /// empty or true a pass. `includeWarnings` false skips the warning-severity ones (a write
    /// does not report them).
    mutating func evaluateConstraints(includeWarnings: Bool) {
        guard let catalog else { return }
        var environment = FHIRPathEnvironment()
        environment.allowsAsOnCollections = true
        environment.sharedBudget = FHIRPathStepBudget(
            steps: InvariantLimits.stepsPerResource + InvariantLimits.stepsPerContext * visits.count)
        // Errors first: warnings must not use up the budget the errors need.
        if evaluateConstraints(catalog, environment, errors: true), includeWarnings {
            environment.sharedBudget = FHIRPathStepBudget(
                steps: InvariantLimits.stepsPerResource + InvariantLimits.stepsPerContext * visits.count)
            _ = evaluateConstraints(catalog, environment, errors: false)
        }
    }

    /// One pass over the visits, with the error or the warning constraints; false when it
    /// stopped at the budget.
    private mutating func evaluateConstraints(
        _ catalog: InvariantCatalog, _ environment: FHIRPathEnvironment, errors: Bool
    ) -> Bool {
        for (number, visit) in visits.enumerated() {
            // A cancelled request (client gone, shutdown) or one out of time (a transaction's
            // limit) stops here; the resource is refused, never taken as checked.
            if number % 64 == 0, WorkDeadline.shouldStop {
                ruleIssues.append(
                    FHIRError.Issue(
                        severity: "error", code: "too-costly",
                        diagnostics: "Validation stopped: the request was cancelled or ran out of time",
                        expression: [visit.location]))
                return false
            }
            let resource = resources[visit.resource]
            let root = resource.container.map { resources[$0].value }
            let item: FHIRPathItem =
                visit.isResource
                ? .element(resource.value, nil, .resource(resource.type), resource.type)
                : .element(.object(visit.object), nil, .complex(visit.node), schema.nodes[visit.node].name)
            var sites = catalog.sitesByNode[visit.node]
            if visit.isResource, !["Bundle", "Binary", "Parameters"].contains(resource.type) {
                sites.append(ConstraintSite(child: nil, constraints: catalog.domainResourceConstraints))
            }
            for site in sites {
                var contexts: [(item: FHIRPathItem, location: String)] = [(item, visit.location)]
                if let child = site.child {
                    guard case .node(let node) = item,
                        let children = try? FHIRPathNavigator.children(of: node, named: child)
                    else { continue }
                    contexts = children.enumerated().map { offset, childItem in
                        (
                            item: childItem,
                            location: visit.location + "." + child + (children.count > 1 ? "[\(offset)]" : "")
                        )
                    }
                }
                for index in site.constraints {
                    let constraint = catalog.constraints[index]
                    guard !constraint.isNative, constraint.isError == errors, let expression = constraint.expression
                    else { continue }
                    for context in contexts {
                        if constraint.guardMember != nil, case .node(let node) = context.item,
                            let object = node.value?.objectValue,
                            !constraint.mayFail(on: object)
                        {
                            continue
                        }
                        do {
                            let result = try expression.evaluate(
                                on: resource.value, context: [context.item], rootResource: root,
                                environment: environment)
                            if result.count == 1, case .boolean(false)? = result[0].systemValue {
                                reportConstraint(index, at: context.location)
                            }
                        } catch let error as FHIRPathError where error.kind == .limit {
                            ruleIssues.append(
                                FHIRError.Issue(
                                    severity: constraint.severity, code: "too-costly",
                                    diagnostics:
                                        "Constraint \(constraint.key) could not be evaluated within the validation limits (\(error.message))"
                                        + (errors
                                            ? "; the resource is refused rather than stored unchecked"
                                            : "; warning constraints left unchecked"),
                                    expression: [context.location]))
                            return false
                        } catch {
                            ruleIssues.append(
                                FHIRError.Issue(
                                    severity: constraint.severity, code: "processing",
                                    diagnostics: "Constraint \(constraint.key) could not be evaluated: \(error)",
                                    expression: [context.location]))
                        }
                    }
                }
            }
        }
        return true
    }
}

extension ResourceStructureValidator {
    /// The Bundle-level rules of a transaction or batch Bundle before its entries run: the
    /// constraints of Bundle and Bundle.entry (bdl-*), unique fullUrls (bdl-7) and each link
    /// relation once. Its entries' resources are not walked here: each is validated as the
    /// write it is, after its references to other entries have been rewritten.
    public func validateBundleRules(_ bundle: JSONValue) -> [FHIRError.Issue] {
        guard case .object(let object) = bundle, let bundleNode = schema.resourceNodes["Bundle"] else { return [] }
        var walk = StructureWalk(schema: schema, catalog: .r4)
        walk.steps.append(("Bundle", -1))
        walk.beginResource(object, type: "Bundle", node: bundleNode, isContained: false)
        walk.visits.append(
            ConstraintVisit(node: bundleNode, object: object, resource: 0, location: "Bundle", isResource: true))
        if let entryNode = Self.bundleEntryNode, case .array(let entries)? = object["entry"] {
            for (offset, entry) in entries.enumerated() {
                guard case .object(let entryObject) = entry else { continue }
                walk.visits.append(
                    ConstraintVisit(
                        node: entryNode, object: entryObject, resource: 0, location: "Bundle.entry[\(offset)]",
                        isResource: false))
            }
        }
        walk.evaluateConstraints(includeWarnings: false)
        return walk.ruleIssues
    }

    private static let bundleEntryNode = StructureSchema.r4.nodes.firstIndex { $0.name == "Bundle.entry" }
}
