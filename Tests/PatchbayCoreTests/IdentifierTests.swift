import Testing

@testable import PatchbayCore

@Suite("identifiers")
struct IdentifierTests {
    static let alphabet = Set("0123456789abcdefghjkmnpqrstvwxyz")

    @Test func carryThePrefixAndTwentySymbolsOfTheAlphabet() {
        let id = Identifier.make("dlv")
        #expect(id.hasPrefix("dlv_"))
        let body = id.dropFirst(4)
        #expect(body.count == 20)
        #expect(body.allSatisfy { Self.alphabet.contains($0) }, "\(id)")
    }

    /// Each position draws its own five bits: a position stuck on a few symbols (bits reused or
    /// shifted out) would show here long before it showed as a collision.
    @Test func everyPositionTakesEverySymbolAndNoIdentifierRepeats() {
        let ids = (0..<4000).map { _ in Array(Identifier.make("x").dropFirst(2)) }
        #expect(Set(ids.map { String($0) }).count == ids.count)
        for position in 0..<20 {
            let seen = Set(ids.map { $0[position] })
            #expect(seen == Self.alphabet, "position \(position) took \(seen.count) of 32 symbols")
        }
    }
}
