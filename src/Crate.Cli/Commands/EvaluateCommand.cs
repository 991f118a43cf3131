using System.CommandLine;
using System.Globalization;
using Crate.Core.Data;
using Crate.Core.Model;
using Crate.Training;
using Crate.Training.Model;
using Spectre.Console;

namespace Crate.Cli.Commands;

/// <summary><c>crate evaluate</c>: loss, top-1, top-5 and per-class accuracy of a weights file on a data set.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var weights = new Option<FileInfo>("--weights") { Description = "Weights file (safetensors written by crate train).", Required = true };
        var split = new Option<string>("--split") { Description = "Split of sources that have one: test (default) or train.", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("test", "train");
        var batchSize = new Option<int>("--batch-size") { Description = "Images per batch.", DefaultValueFactory = _ => 256 };
        var threads = new Option<int>("--threads") { Description = "libtorch threads.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var command = new Command("evaluate", "Evaluate weights on a data set: loss, top-1, top-5 and per-class accuracy.") { weights, split, batchSize, threads };
        data.AddTo(command);
        command.SetAction(parse =>
        {
            TorchSharp.torch.set_num_threads(parse.GetValue(threads));
            var file = parse.GetRequiredValue(weights).FullName;
            var model = CrateModelWeights.LoadModel(file);
            var dataSplit = parse.GetValue(split) == "train" ? DataSplit.Train : DataSplit.Test;
            var set = data.Load(parse, DataSource.Generated, dataSplit, DataOptions.For(model.Config));
            var result = CrateEvaluation.Evaluate(model, set, parse.GetValue(batchSize));

            var table = new Table().AddColumn("class").AddColumn(new TableColumn("images").RightAligned()).AddColumn(new TableColumn("top-1").RightAligned());
            for (int c = 0; c < result.ClassNames.Count; c++)
            {
                var accuracy = result.ClassAccuracy(c);
                table.AddRow(Markup.Escape(result.ClassNames[c]), result.ClassCounts[c].ToString(CultureInfo.InvariantCulture),
                    double.IsNaN(accuracy) ? "-" : accuracy.ToString("P2", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(table);
            Console.WriteLine($"{Path.GetFileName(file)} on '{data.Spec(parse, DataSource.Generated)}' ({dataSplit.ToString().ToLowerInvariant()}): {result}");
            return 0;
        });
        return command;
    }
}
