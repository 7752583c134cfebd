//! The README's sample sessions on the shipped example print what the program
//! prints: every `console` block whose command is `cargo run --release -- ARGS`
//! on `examples/` alone (it changes nothing) is run, and its output compared line
//! for line, up to a `...` line that stands for the rest.

use crate::contact_sync;

/// (arguments, expected output) of each such block.
fn sessions() -> Vec<(Vec<String>, Vec<String>)> {
    let readme = std::fs::read_to_string(crate::root().join("README.md")).unwrap();
    let mut found = Vec::new();
    for block in readme.split("```console\n").skip(1) {
        let block = &block[..block.find("```").unwrap()];
        let mut lines = block.lines();
        let Some(first) = lines.next() else { continue };
        let Some(args) = first.strip_prefix("$ cargo run --release -- ") else { continue };
        let args: Vec<String> = args.split_whitespace().map(str::to_owned).collect();
        let on_the_example = args.iter().any(|a| a == "examples/")
            && args.iter().all(|a| !a.starts_with('/') && !a.contains("--out"));
        if !on_the_example {
            continue;
        }
        let expected: Vec<String> =
            lines.take_while(|l| !l.starts_with("$ ")).map(str::to_owned).collect();
        found.push((args, expected));
    }
    found
}

#[test]
fn the_readme_shows_what_the_program_prints_on_the_example() {
    let sessions = sessions();
    let commands: Vec<&str> = sessions.iter().map(|(args, _)| args[0].as_str()).collect();
    for needed in ["plan", "resolve"] {
        assert!(commands.contains(&needed), "no `{needed} examples/` session in the README");
    }
    for (args, expected) in sessions {
        let out = contact_sync().args(&args).assert();
        let printed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        let printed: Vec<&str> = printed.lines().collect();
        if !expected.iter().any(|l| l == "...") {
            assert_eq!(
                printed.len(),
                expected.len(),
                "README session `{}` shows {} lines, the program prints:\n{}",
                args.join(" "),
                expected.len(),
                printed.join("\n")
            );
        }
        for (i, want) in expected.iter().enumerate() {
            if want == "..." {
                break;
            }
            assert_eq!(
                printed.get(i).copied(),
                Some(want.as_str()),
                "README session `{}`, line {}:\n{}",
                args.join(" "),
                i + 1,
                printed.join("\n")
            );
        }
    }
}

/// The README and every `--help` speak for themselves: no pointer at a design
/// document or section that users do not have.
#[test]
fn the_readme_and_the_help_texts_point_at_nothing_outside_the_repository() {
    let mut texts = vec![(
        "README.md".to_owned(),
        std::fs::read_to_string(crate::root().join("README.md")).unwrap(),
    )];
    let commands = [
        "validate",
        "schema",
        "plan",
        "resolve",
        "show",
        "apply",
        "adopt",
        "reconcile",
        "emulator",
        "healthcheck",
        "completions",
        "man",
    ];
    for command in std::iter::once(None).chain(commands.map(Some)) {
        let mut cmd = contact_sync();
        cmd.args(command).arg("--help");
        let out = cmd.assert().success();
        let help = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        texts.push((format!("{} --help", command.unwrap_or("contact-sync")), help));
    }
    for (name, text) in texts {
        for outside in ["DESIGN", "§", "../shared", "STYLE.md", "GOOGLE-APIS"] {
            assert!(!text.contains(outside), "{name} mentions {outside}");
        }
    }
}
