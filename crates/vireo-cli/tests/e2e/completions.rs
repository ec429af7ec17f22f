//! `vireo completions SHELL` prints a script the shell accepts and that knows the commands.

use std::process::{Command, Stdio};

fn completions(shell: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["completions", shell])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn bash_loads_the_script_and_completes_commands_and_flags() {
    // A file, not a variable: the script is longer than one argument or variable may be.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vireo.bash");
    std::fs::write(&script, completions("bash")).unwrap();
    // Load the script into a real bash, then ask its completion function for `vireo de<TAB>`
    // and `vireo logs --<TAB>` the way bash would.
    let probe = r#"
        source "$SCRIPT"
        complete -p vireo
        COMP_WORDS=(vireo de); COMP_CWORD=1; COMP_LINE="vireo de"; COMP_POINT=${#COMP_LINE}
        _vireo vireo de vireo; echo "commands: ${COMPREPLY[*]}"
        COMP_WORDS=(vireo logs --); COMP_CWORD=2; COMP_LINE="vireo logs --"; COMP_POINT=${#COMP_LINE}
        _vireo vireo -- logs; echo "flags: ${COMPREPLY[*]}"
    "#;
    let output = Command::new("bash")
        .args(["--norc", "-c", probe])
        .env("SCRIPT", &script)
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("-F _vireo vireo"), "{stdout}\n{stderr}");
    let commands = stdout.lines().find(|l| l.starts_with("commands:")).unwrap();
    assert!(commands.contains("deploy"), "{commands}");
    assert!(
        !commands.contains("logs"),
        "only what starts with `de`: {commands}"
    );
    let flags = stdout.lines().find(|l| l.starts_with("flags:")).unwrap();
    assert!(flags.contains("--follow"), "{flags}");
}

#[test]
fn zsh_and_fish_scripts_name_the_commands() {
    let zsh = completions("zsh");
    assert!(
        zsh.starts_with("#compdef vireo"),
        "{}",
        &zsh[..80.min(zsh.len())]
    );
    assert!(
        zsh.contains("'deploy:"),
        "zsh script lists the deploy command"
    );
    let fish = completions("fish");
    assert!(
        fish.contains("complete -c vireo"),
        "fish script completes vireo"
    );
    assert!(
        fish.contains("-a \"deploy\""),
        "fish script lists the deploy command"
    );
}

#[test]
fn an_unknown_shell_is_refused_with_the_choices() {
    let output = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["completions", "tcsh"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("zsh") && stderr.contains("fish"),
        "{stderr}"
    );
}
