fn main() -> std::process::ExitCode {
    voxd::cli::main()
}
