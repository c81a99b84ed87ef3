/// Patchbay's version: `patchbay --version`, the start-up log line and `patchbay_build_info`.
public enum PatchbayVersion {
    public static let current = "0.10.0"
}
