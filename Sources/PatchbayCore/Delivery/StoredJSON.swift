import Foundation

/// How both stores keep small lists (route resources, packages) and tag maps in a text column:
/// as JSON. Most rows hold an empty one, written and read here without a JSON coder: a coder per
/// row showed in the intake and claim profiles.
public enum StoredJSON {
    public static func encode(_ list: [String]) -> String {
        guard !list.isEmpty else { return "[]" }
        return (try? String(decoding: JSONEncoder().encode(list), as: UTF8.self)) ?? "[]"
    }

    /// Empty for NULL or for text that is not a JSON list of strings.
    public static func decodeList(_ text: String?) -> [String] {
        guard let text, text != "[]" else { return [] }
        return (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }

    public static func encode(_ tags: [String: String]) -> String {
        guard !tags.isEmpty else { return "{}" }
        return (try? String(decoding: JSONEncoder().encode(tags), as: UTF8.self)) ?? "{}"
    }

    /// Empty for text that is not a JSON object of strings.
    public static func decodeTags(_ text: String) -> [String: String] {
        guard text != "{}" else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }
}

extension StoredJSON {
    /// A (maintenance, target)'s follow-up state as both stores keep it.
    public static func encode(_ state: FollowUpState) throws -> String {
        String(decoding: try JSONEncoder.patchbay().encode(state), as: UTF8.self)
    }

    public static func followUp(_ text: String) throws -> FollowUpState {
        try JSONDecoder.patchbay().decode(FollowUpState.self, from: Data(text.utf8))
    }
}
