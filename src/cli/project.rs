//! `berth new-project`, `berth project`.

use anyhow::bail;

use super::session::{Globals, Session};

#[derive(Debug, clap::Args)]
pub struct NewProjectArgs {
    /// Name of the project (namespace): `[a-z0-9]+([._-][a-z0-9]+)*`.
    pub name: String,
    /// Do not make it the current project.
    #[arg(long)]
    pub skip_config_write: bool,
}

#[derive(Debug, clap::Args)]
pub struct ProjectArgs {
    /// The project to switch to; without it, show the current one.
    pub name: Option<String>,
    /// Print only the project's name.
    #[arg(short = 'q', long)]
    pub short: bool,
}

pub async fn new_project(args: NewProjectArgs, globals: &Globals) -> anyhow::Result<()> {
    let mut session = Session::load(globals)?;
    let project = session.client()?.create_project(&args.name).await?;
    let name = project.metadata.name;
    if args.skip_config_write {
        println!(
            "Created project \"{name}\" on server \"{}\".",
            session.server
        );
        return Ok(());
    }
    session.entry_mut().current_namespace = Some(name.clone());
    session.save()?;
    println!(
        "Now using project \"{name}\" on server \"{}\".",
        session.server
    );
    Ok(())
}

pub async fn project(args: ProjectArgs, globals: &Globals) -> anyhow::Result<()> {
    let mut session = Session::load(globals)?;
    let current = session.entry().and_then(|e| e.current_namespace.clone());
    let Some(name) = args.name else {
        let Some(current) = current else {
            bail!("no project has been set: choose one with \"berth project NAME\"");
        };
        if args.short {
            println!("{current}");
        } else {
            println!(
                "Using project \"{current}\" on server \"{}\".",
                session.server
            );
        }
        return Ok(());
    };
    let client = session.client()?;
    let name = match client.get_project(&name).await {
        Ok(project) => project.metadata.name,
        Err(e) if e.code() == Some(404) => bail!(
            "A project named \"{name}\" does not exist on \"{}\".\n\
             Your projects are listed by \"berth get projects\"; create one with \
             \"berth new-project {name}\".",
            session.server
        ),
        Err(e) => return Err(e.into()),
    };
    session.entry_mut().current_namespace = Some(name.clone());
    session.save()?;
    if args.short {
        println!("{name}");
    } else if current.as_deref() == Some(name.as_str()) {
        println!(
            "Already on project \"{name}\" on server \"{}\".",
            session.server
        );
    } else {
        println!(
            "Now using project \"{name}\" on server \"{}\".",
            session.server
        );
    }
    Ok(())
}
