import Mustache

/// Renders the authorized_keys line from `Templates/authorized_keys.mustache`.
/// Pure: the template text comes in as a string.
public struct AuthorizedKeyRenderer: Sendable {
    public static let templateName = "authorized_keys.mustache"

    let template: MustacheTemplate

    public init(template: String) throws(TemplateError) {
        do { self.template = try MustacheTemplate(string: template) } catch {
            throw TemplateError(template: Self.templateName, reason: "\(error)")
        }
    }

    /// The one line to append to the bastion's `~/.ssh/authorized_keys`.
    public func line(_ policy: AuthorizedKeyPolicy, key: PublicKey) -> String {
        var model: [String: Any] = [
            "permitOpen": policy.permitOpen, "permitListen": policy.permitListen,
            "keyType": key.key.type, "keyBlob": key.key.blob,
        ]
        if let from = policy.from { model["from"] = from }
        if let comment = key.comment { model["comment"] = comment }
        // One line whatever the template's layout: a newline would end the entry early.
        return template.render(model).split(whereSeparator: \.isNewline).joined().trimmingSpaces
    }
}
