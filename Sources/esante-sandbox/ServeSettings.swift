import ArgumentParser
import Configuration
import Foundation
import SystemPackage

/// Where `serve` takes each setting from, first found wins: its flag, the environment variable
/// (`ESANTE_SANDBOX_` + the flag in upper snake case: `--admin-port` → `ESANTE_SANDBOX_ADMIN_PORT`), the
/// `--config` JSON file (the flag in camel case: `{"adminPort": 9080}`), the built-in default.
///
/// Read with swift-configuration's providers. Every value, whatever its source, is parsed by the flag's own
/// parser (`ExpressibleByArgument`), so `ESANTE_SANDBOX_REJECT_MODE=htp` is refused as `--reject-mode htp` would be.
struct ServeSettings {
    /// One resolved setting, for `serve --print-config`.
    struct Resolved {
        var flag: String
        var value: String
        var origin: String
    }

    private let environment: EnvironmentVariablesProvider
    private let file: FileProvider<JSONSnapshot>?
    private let filePath: String?
    private(set) var resolved: [Resolved] = []

    static let environmentPrefix = ["esante", "sandbox"]

    init(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) async throws {
        self.environment = EnvironmentVariablesProvider(
            environmentVariables: environment,
            secretsSpecifier: .specific(["ESANTE_SANDBOX_ADMIN_TOKEN"])
        )
        let path = configFile ?? environment["ESANTE_SANDBOX_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        self.filePath = path
        if let path {
            guard FileManager.default.fileExists(atPath: path) else {
                throw UsageFailure("--config \(path): no such file")
            }
            do { self.file = try await FileProvider<JSONSnapshot>(filePath: FilePath(path)) } catch {
                throw UsageFailure("--config \(path): not a JSON object of settings (\(error))")
            }
        } else {
            self.file = nil
        }
    }

    /// A setting's environment variable alone (commands other than `serve` read the data folder's this way).
    static func environmentValue(_ flag: String) -> String? {
        let provider = EnvironmentVariablesProvider()
        let result = try? provider.value(forKey: AbsoluteConfigKey(environmentPrefix + [key(flag)]), type: .string)
        guard case .string(let text)? = result?.value?.content, !text.isEmpty else { return nil }
        return text
    }

    /// `--kebab-name` → `kebabName`, the key of the file and (prefixed) of the environment.
    static func key(_ flag: String) -> String {
        let words = flag.split(separator: "-")
        return words.enumerated().map { $0.offset == 0 ? String($0.element) : $0.element.capitalized }.joined()
    }

    /// The setting's text from the environment or the file, and where it came from. In the file the value is
    /// read as the JSON type the flag takes (`type`), or as a string a flag would be given.
    private func lookUp(_ flag: String, as type: ConfigType) throws -> (text: String, origin: String)? {
        let key = Self.key(flag)
        let environmentKey = AbsoluteConfigKey(Self.environmentPrefix + [key])
        let fromEnvironment = try environment.value(forKey: environmentKey, type: .string)
        if case .string(let text)? = fromEnvironment.value?.content {
            return (text, "environment \(fromEnvironment.encodedKey)")
        }
        guard let file, let filePath else { return nil }
        let fileKey = AbsoluteConfigKey([key])
        let origin = "file \(filePath)"
        do {
            switch try file.value(forKey: fileKey, type: type).value?.content {
            case .string(let text)?: return (text, origin)
            case .int(let number)?: return (String(number), origin)
            case .double(let number)?: return (String(number), origin)
            case .bool(let value)?: return (String(value), origin)
            default: return nil
            }
        } catch {
            if type != .string, case .string(let text)? = try? file.value(forKey: fileKey, type: .string).value?.content
            {
                return (text, origin)
            }
            let expected =
                switch type {
                case .int: "an integer"
                case .double: "a number"
                case .bool: "true or false"
                default: "a string"
                }
            throw UsageFailure("\(filePath): \(key) must be \(expected)")
        }
    }

    /// The JSON type a flag's value has in the file.
    private static func configType<T>(_: T.Type) -> ConfigType {
        if T.self == Int.self { return .int }
        if T.self == Double.self { return .double }
        if T.self == Bool.self { return .bool }
        return .string
    }

    /// The flag's value when given, else the environment's or the file's, else `defaultValue`.
    mutating func value<T: ExpressibleByArgument>(
        _ flag: String,
        _ given: T?,
        default defaultValue: T,
        secret: Bool = false
    ) throws -> T {
        try optional(flag, given, secret: secret, defaultText: Self.text(defaultValue)) ?? defaultValue
    }

    /// As `value`, for a setting with no default (nil when no source has it).
    mutating func optional<T: ExpressibleByArgument>(
        _ flag: String,
        _ given: T?,
        secret: Bool = false,
        defaultText: String = "(none)"
    ) throws -> T? {
        let show = { (value: String) in secret ? "********" : value }
        if let given {
            resolved.append(Resolved(flag: flag, value: show(Self.text(given)), origin: "flag --\(flag)"))
            return given
        }
        guard let (text, origin) = try lookUp(flag, as: Self.configType(T.self)) else {
            resolved.append(Resolved(flag: flag, value: defaultText, origin: "default"))
            return nil
        }
        guard let value = T(argument: text) else {
            throw UsageFailure("\(origin): '\(text)' is not a valid value for --\(flag)")
        }
        resolved.append(Resolved(flag: flag, value: show(text), origin: origin))
        return value
    }

    /// A value as its flag would be written (`rsa`, not the case name `rsa2048`).
    static func text<T>(_ value: T) -> String {
        (value as? any RawRepresentable<String>)?.rawValue ?? "\(value)"
    }

    /// A repeatable flag: the flags when any, else a comma-separated environment value or file string.
    mutating func list(_ flag: String, _ given: [String]) throws -> [String] {
        if !given.isEmpty {
            resolved.append(Resolved(flag: flag, value: given.joined(separator: ","), origin: "flag --\(flag)"))
            return given
        }
        guard let (text, origin) = try lookUp(flag, as: .string) else {
            resolved.append(Resolved(flag: flag, value: "(none)", origin: "default"))
            return []
        }
        resolved.append(Resolved(flag: flag, value: text, origin: origin))
        return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// `serve --print-config`: one line per setting, its value and its source.
    var report: String {
        let width = (resolved.map(\.flag.count).max() ?? 0) + 2
        let valueWidth = min(60, resolved.map(\.value.count).max() ?? 0) + 2
        return resolved.map {
            "--\($0.flag.padding(toLength: width, withPad: " ", startingAt: 0))"
                + "\($0.value.padding(toLength: max(valueWidth, $0.value.count + 2), withPad: " ", startingAt: 0))"
                + $0.origin
        }.joined(separator: "\n")
    }
}
