using System.CommandLine;
using Crate.Cli.Commands;

var root = new RootCommand("crate: train, inspect, export and serve CRATE white-box transformers.")
{
    InfoCommand.Create(),
    BenchCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
