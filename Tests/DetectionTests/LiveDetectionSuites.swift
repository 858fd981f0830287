import Testing

/// The live detection suites, one at a time: each starts a sensor that sees every container,
/// and together with the sensor's own kernel tests they loaded Docker until it answered a
/// container lookup too late (a CI run lost a container's name that way).
@Suite(.serialized) struct LiveDetectionSuites {}
