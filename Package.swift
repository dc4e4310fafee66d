// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "warren",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "warren", targets: ["warren"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
    ],
    targets: [
        // Pure: config model and validation, rendering, stderr classifier,
        // tunnel state machine, backoff, diagnoses. No processes, clocks or files
        // beyond reading the config and templates it is handed.
        .target(
            name: "WarrenCore",
            dependencies: [
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            swiftSettings: strict
        ),
        // The one piece of C: spawning a child with vfork (a process group of its
        // own, PR_SET_PDEATHSIG, every other descriptor closed), and epoll,
        // which Swift's Glibc module does not export.
        .target(name: "CWarrenSpawn"),
        // Effects: ssh children, supervisor, status files, probes, key tools, doctor.
        .target(
            name: "WarrenRuntime",
            dependencies: [
                "WarrenCore",
                "CWarrenSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "WarrenCLI",
            dependencies: [
                "WarrenCore",
                "WarrenRuntime",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "warren",
            dependencies: ["WarrenCLI"],
            swiftSettings: strict
        ),
        // Only tests use this: a real sshd on loopback, targets, temp dirs.
        .target(
            name: "WarrenTestSupport",
            dependencies: [
                "WarrenCore",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WarrenCoreTests",
            dependencies: ["WarrenCore", "WarrenTestSupport"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "WarrenIntegrationTests",
            dependencies: ["WarrenCore", "WarrenRuntime", "WarrenTestSupport"],
            swiftSettings: strict
        ),
    ]
)
