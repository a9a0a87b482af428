"""The one shape every test under tests/ has."""

def tlsengine_test(name, size = "small", peers = None, deps = []):
    """A GoogleTest binary NAME from NAME.cc on core and the test library.

    Args:
      name: the test, and its source file without .cc.
      size: Bazel's test size.
      peers: for interop tests, the programs it starts on loopback (text
        for the reader; such tests are tagged requires-network).
      deps: further dependencies.
    """
    native.cc_test(
        name = name,
        size = size,
        srcs = [name + ".cc"],
        tags = ["requires-network"] if peers else [],
        deps = [
            "//core",
            "//tests/testlib",
            "@system//:gtest_main",
        ] + deps,
    )
