// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Patchbay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "patchbay", targets: ["patchbay"]),
        .executable(name: "patchbay-bench-hello", targets: ["patchbay-bench-hello"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", exact: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", exact: "2.1.1"),
        .package(url: "https://github.com/vapor/jwt-kit.git", exact: "5.7.1"),
    ],
    targets: [
        // Pure domain: events, routes, deliveries, outcomes, time, secrets, the store and transport protocols.
        .target(
            name: "PatchbayCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // One folder per target kind: config, payload rendering, response classification.
        .target(
            name: "PatchbayTargets",
            dependencies: ["PatchbayCore", .product(name: "Mustache", package: "swift-mustache")]
        ),
        // Configuration file: YAML, ${ENV} substitution, validation with key paths.
        .target(
            name: "PatchbayConfig",
            dependencies: [
                "PatchbayCore",
                "PatchbayTargets",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Durable queue on SQLite (WAL, synchronous=FULL, group commit).
        .target(
            name: "PatchbaySQLite",
            dependencies: [
                "PatchbayCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The same queue on PostgreSQL, for several instances sharing one database (SKIP LOCKED
        // claims, a cluster-wide pacing budget, heartbeats, LISTEN/NOTIFY wake-ups).
        .target(
            name: "PatchbayPostgres",
            dependencies: [
                "PatchbayCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Inbound relay sources: signature checks (Standard Webhooks, GitHub, Slack, SNS) and the
        // mapping of AWS events to lifecycle events. No I/O but the SNS certificate fetch.
        .target(
            name: "PatchbayRelay",
            dependencies: [
                "PatchbayCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        // The only code that touches libcurl.
        .target(
            name: "PatchbayCurl",
            dependencies: [
                "CCurl",
                "PatchbayCore",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Signing operators in with an OpenID Connect provider: discovery, the provider's keys
        // (fetched through the transport, cached, rotated), the ID token checked (JOSE by jwt-kit),
        // PKCE, and the claims that make a role. No HTTP server, no cookies: the console's.
        .target(
            name: "PatchbayOIDC",
            dependencies: [
                "PatchbayCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // HTTP API (Hummingbird) and the long-running services (dispatcher).
        .target(
            name: "PatchbayServer",
            dependencies: [
                "PatchbayCore",
                "PatchbayOIDC",
                "PatchbayRelay",
                "PatchbayTargets",
                "PatchbayConfig",
                "PatchbaySQLite",
                "PatchbayPostgres",
                "PatchbayCurl",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // A local stand-in for Slack, Teams, Statuspage and Pingdom, for tests, demos and benchmarks.
        .target(
            name: "PatchbaySink",
            dependencies: [
                "PatchbayCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "patchbay",
            dependencies: [
                "PatchbayCore",
                "PatchbayTargets",
                "PatchbayConfig",
                "PatchbaySQLite",
                "PatchbayCurl",
                "PatchbayServer",
                "PatchbaySink",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The intake reference for Benchmarks/run.py: Hummingbird decoding the same JSON, nothing else.
        .executableTarget(
            name: "patchbay-bench-hello",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/Hello"
        ),
        // Helpers shared by the test targets: golden files, temporary directories, child processes.
        .target(
            name: "PatchbayTestSupport",
            dependencies: [
                "PatchbayCore",
                "PatchbaySink",
                "PatchbayRelay",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/PatchbayTestSupport"
        ),
        .testTarget(name: "PatchbayCoreTests", dependencies: ["PatchbayCore"]),
        .testTarget(
            name: "PatchbayTargetsTests",
            dependencies: ["PatchbayTargets", "PatchbayCore", "PatchbayTestSupport"],
            exclude: ["Golden"]
        ),
        .testTarget(
            name: "PatchbayRelayTests",
            dependencies: [
                "PatchbayRelay", "PatchbayCore", "PatchbayTestSupport",
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "PatchbayConfigTests", dependencies: ["PatchbayConfig", "PatchbayCore"]),
        .testTarget(
            name: "PatchbayOIDCTests",
            dependencies: [
                "PatchbayOIDC", "PatchbayCore", .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PatchbayStoreTests",
            dependencies: [
                "PatchbaySQLite", "PatchbayPostgres", "PatchbayCore", "PatchbayTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(name: "PatchbayCurlTests", dependencies: ["PatchbayCurl", "PatchbaySink", "PatchbayCore", "PatchbayTestSupport"]),
        .testTarget(
            name: "PatchbayServerTests",
            dependencies: [
                "PatchbayServer",
                "PatchbayConfig",
                "PatchbaySQLite",
                "PatchbayCore",
                "PatchbayTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // Runs the real `patchbay` executable against the sink over loopback.
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "patchbay",
                "PatchbaySink",
                "PatchbayCore",
                "PatchbayCurl",
                "PatchbayTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
