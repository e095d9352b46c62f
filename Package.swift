// swift-tools-version:6.0
import Foundation
import PackageDescription

/// `scripts/fuzz` builds with ESANTE_SANDBOX_FUZZ=1: the parsers' modules get libFuzzer's coverage and
/// AddressSanitizer, and `sandbox-fuzz` becomes libFuzzer targets (flags per target, so the build plugin's host tool
/// stays an ordinary program).
let fuzzing = ProcessInfo.processInfo.environment["ESANTE_SANDBOX_FUZZ"] == "1"
let fuzzed: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer,address"]), .define("FUZZING")] : []
/// libFuzzer without its `main` (the script finds it beside the toolchain's clang): `sandbox-fuzz`'s own main picks the
/// target, then hands over to `LLVMFuzzerRunDriver`.
let fuzzerLibrary = ProcessInfo.processInfo.environment["ESANTE_SANDBOX_FUZZ_LIB"] ?? ""

// Versions are the ones in the local package mirror (see README "Building offline").
let package = Package(
    name: "esante-sandbox",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "esante-sandbox", targets: ["esante-sandbox"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        // MTOM/XOP (multipart/related) for the DMP's XDS.b messages.
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        // Already built for HummingbirdTesting; the guided demo is an HTTPS client with client certificates.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // GET /metrics on the admin listener: swift-metrics instruments, exposed in the Prometheus text format.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        // serve's settings from the environment and a JSON file as well as flags.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The recette report's ZIP of traces, one folder per test code.
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
    ],
    targets: [
        // Seeds/ built into the binary (raw string literals written by the EmbedSeeds plugin at build time).
        .target(
            name: "SandboxSeeds",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            plugins: ["EmbedSeeds"]
        ),
        .executableTarget(name: "seed-embedder"),
        // The parsers fed arbitrary bytes: libFuzzer targets built by scripts/fuzz (-sanitize=fuzzer,address
        // -D FUZZING), a replayer of saved inputs otherwise.
        .executableTarget(
            name: "sandbox-fuzz",
            dependencies: ["Access", "FHIRCore", "HTTPCommon", "RORFHIR", "SOAPCore"],
            swiftSettings: fuzzed,
            linkerSettings: fuzzing
                ? [.unsafeFlags(["-sanitize=address", "-use-ld=lld", "-Xlinker", fuzzerLibrary])] : []
        ),
        .plugin(name: "EmbedSeeds", capability: .buildTool(), dependencies: ["seed-embedder"]),
        // The executable only parses the command line and wires the modules below.
        .executableTarget(
            name: "esante-sandbox",
            dependencies: [
                "SandboxServer", "Access", "Store", "TestPKI", "RORFHIR", "INSi", "GuidedDemo", "MonEspaceSante",
                "Recette", "SandboxSeeds",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // Listeners, TLS, lifecycle, admin API, ready file. Knows no FHIR or SOAP detail beyond error shapes.
        .target(
            name: "SandboxServer",
            dependencies: [
                "Access", "Store", "TestPKI", "FHIRCore", "SOAPCore", "HTTPCommon", "RORFHIR", "RORCSD", "INSi",
                "MonEspaceSante", "DMP", "Recette", "SandboxSeeds",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            resources: [.embedInCode("Resources/admin-openapi.json")]
        ),
        // `esante-sandbox demo`: the whitelisting flow played against a sandbox over HTTPS, checked step by step.
        .target(
            name: "GuidedDemo",
            dependencies: [
                "SandboxServer", "Access",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Who calls and whether they may: identities, DNs, whitelist, journal.
        .target(
            name: "Access",
            dependencies: [
                "Store", "TestPKI",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: fuzzed
        ),
        // One SQLite file (WAL) or memory; schema as migrations.
        .target(
            name: "Store",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The IGC-Santé-shaped local PKI: CAs, server and client leaves, negative certificates, revocations.
        .target(
            name: "TestPKI",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // FHIR R4 machinery shared by FHIR services: OperationOutcome, resource store and search engine, Bundles.
        .target(
            name: "FHIRCore",
            dependencies: [
                "Store",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: fuzzed
        ),
        // The national ROR's FHIR "MEV3" API: search parameters, routes, CapabilityStatement, dataset.
        .target(
            name: "RORFHIR",
            dependencies: [
                "FHIRCore", "Access", "Store", "HTTPCommon", "TestPKI",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: fuzzed
        ),
        // The ROR's legacy SOAP interface "CSD MEV2.4" over the ROR FHIR store: TR_Lecture, TR-Notif, WSDL.
        .target(
            name: "RORCSD",
            dependencies: [
                "SOAPCore", "FHIRCore", "RORFHIR", "Access",
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // Mon espace santé: pairing (OAuth2 authorization code, tokens bound to the certificate) and health measures.
        .target(
            name: "MonEspaceSante",
            dependencies: [
                "FHIRCore", "Access", "Store", "HTTPCommon", "SOAPCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The DMP's web services for DMP-compatible software: the patients service (TD0.2, TD1.1, TD1.2) behind the VIHF.
        .target(
            name: "DMP",
            dependencies: [
                "SOAPCore", "Access", "Store", "FHIRCore", "HTTPCommon",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // The recette: scenario packs judged against a client's journaled calls, answers injected for that client
        // only, and the acceptance reports (JUnit, JSON, HTML, ZIP of traces).
        .target(
            name: "Recette",
            dependencies: [
                "Access", "Store", "FHIRCore", "SOAPCore", "HTTPCommon",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        // The INSi teleservice (Assurance Maladie): INS search by traits and by Vitale card, test base, WSDL.
        .target(
            name: "INSi",
            dependencies: [
                "SOAPCore", "Access", "Store",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        // HTTP details shared by the services and the server: form decoding, HTTP dates.
        .target(
            name: "HTTPCommon",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"), .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: fuzzed
        ),
        // SOAP 1.2 shared by the SOAP services: hardened XML parsing (no DTD, bounded), envelope, Fault.
        .target(
            name: "SOAPCore",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: fuzzed
        ),
        .testTarget(
            name: "AccessTests",
            dependencies: ["Access", "TestPKI", "Store", .product(name: "SwiftASN1", package: "swift-asn1")]
        ),
        .testTarget(name: "TestPKITests", dependencies: ["TestPKI", "Access"]),
        .testTarget(name: "HTTPCommonTests", dependencies: ["HTTPCommon"]),
        .testTarget(
            name: "FHIRCoreTests",
            dependencies: ["FHIRCore", "Store", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // What the end-to-end suites share: a sandbox run in the test process, test PKI, TLS clients, shell, and the
        // calls of a ROR consumer and feeder. Not a test target, so each module's suite can use it.
        .target(
            name: "SandboxTestSupport",
            dependencies: [
                "SandboxServer", "Access", "Store", "TestPKI", "INSi", "SOAPCore", "RORCSD",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/SandboxTestSupport"
        ),
        .testTarget(
            name: "SandboxServerTests",
            dependencies: [
                "SandboxTestSupport", "SandboxServer", "Access", "Store", "TestPKI", "esante-sandbox", "RORFHIR",
                "FHIRCore", "INSi", "HTTPCommon", "SandboxSeeds", "sandbox-fuzz",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RORFHIRTests",
            dependencies: [
                "SandboxTestSupport", "RORFHIR", "FHIRCore", "HTTPCommon", "SandboxServer", "Access", "Store",
                "TestPKI",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RORCSDTests",
            dependencies: [
                "SandboxTestSupport", "RORCSD", "SOAPCore", "RORFHIR", "SandboxServer", "Access",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "INSiTests",
            dependencies: [
                "SandboxTestSupport", "INSi", "SOAPCore", "SandboxServer", "Access",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "MonEspaceSanteTests",
            dependencies: [
                "SandboxTestSupport", "MonEspaceSante", "SandboxServer", "HTTPCommon", "FHIRCore", "Store",
                "esante-sandbox",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "DMPTests",
            dependencies: [
                "SandboxTestSupport", "DMP", "SOAPCore", "SandboxServer",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .testTarget(name: "SOAPCoreTests", dependencies: ["SOAPCore"]),
        .testTarget(
            name: "RecetteTests",
            dependencies: [
                "SandboxTestSupport", "Recette", "SandboxServer", "SOAPCore", "Access", "INSi", "MonEspaceSante",
                "HTTPCommon",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
