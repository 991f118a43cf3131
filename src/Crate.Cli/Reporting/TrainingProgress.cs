using System.Diagnostics;
using System.Globalization;
using Crate.Training;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Crate.Cli.Reporting;

/// <summary>
/// Shows training progress: Spectre.Console bars (one per epoch plus the whole run) with images/s and ETA on an
/// interactive terminal, plain lines (about ten per epoch) when output is redirected to a log.
/// </summary>
internal static class TrainingProgress
{
    /// <summary>Runs the classification trainer <paramref name="train"/>, giving it the step and epoch callbacks that drive the display.</summary>
    public static TrainingResult Run(Func<Action<StepMetrics>, Action<EpochMetrics>, TrainingResult> train) => Show(train);

    /// <summary>Runs <paramref name="train"/> (which returns nothing), giving it the step and epoch callbacks; an epoch's report is shown as its <c>ToString()</c>.</summary>
    public static void Run<TEpoch>(Action<Action<StepMetrics>, Action<TEpoch>> train) where TEpoch : notnull =>
        Show<TEpoch, bool>((onStep, onEpoch) => { train(onStep, onEpoch); return true; });

    private static TResult Show<TEpoch, TResult>(Func<Action<StepMetrics>, Action<TEpoch>, TResult> train) where TEpoch : notnull
    {
        bool interactive = !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
        return interactive ? RunWithBars(train) : RunWithLines(train);
    }

    private static TResult RunWithLines<TEpoch, TResult>(Func<Action<StepMetrics>, Action<TEpoch>, TResult> train) where TEpoch : notnull
    {
        var eta = new Eta();
        return train(s =>
        {
            eta.Observe(s);
            int every = Math.Max(1, s.StepsPerEpoch / 10);
            if (s.Step % every == 0 || s.Step == s.StepsPerEpoch)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"epoch {s.Epoch}/{s.TotalSteps / s.StepsPerEpoch} step {s.Step}/{s.StepsPerEpoch} loss {s.Loss:F4} lr {s.LearningRate:0.00e+00} {s.ImagesPerSecond:F0} images/s ETA {Eta.Format(eta.Remaining(s))}"));
        }, m => Console.WriteLine(m.ToString()));
    }

    private static TResult RunWithBars<TEpoch, TResult>(Func<Action<StepMetrics>, Action<TEpoch>, TResult> train) where TEpoch : notnull
    {
        TResult result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new StatsColumn())
            .Start(context =>
            {
                var eta = new Eta();
                ProgressTask? total = null, epoch = null;
                result = train(s =>
                {
                    eta.Observe(s);
                    total ??= context.AddTask("run", maxValue: s.TotalSteps);
                    if (epoch == null || epoch.IsFinished)
                        epoch = context.AddTask($"epoch {s.Epoch}/{s.TotalSteps / s.StepsPerEpoch}", maxValue: s.StepsPerEpoch);
                    epoch.Value = s.Step;
                    epoch.Description = string.Create(CultureInfo.InvariantCulture, $"epoch {s.Epoch}/{s.TotalSteps / s.StepsPerEpoch} loss {s.Loss:F4}");
                    epoch.State.Update<double>(StatsColumn.Rate, _ => s.ImagesPerSecond);
                    total.Value = s.GlobalStep;
                    total.State.Update<double>(StatsColumn.Remaining, _ => eta.Remaining(s).TotalSeconds);
                }, m => AnsiConsole.MarkupLine(Markup.Escape(m.ToString() ?? "")));
                total?.StopTask();
            });
        return result;
    }

    /// <summary>Remaining time from this session's average step time (a resumed run starts counting at its first step).</summary>
    private sealed class Eta
    {
        private readonly Stopwatch _clock = new();
        private long _firstStep;

        public void Observe(StepMetrics s)
        {
            if (_clock.IsRunning) return;
            _firstStep = s.GlobalStep - 1;
            _clock.Start();
        }

        public TimeSpan Remaining(StepMetrics s)
        {
            long done = s.GlobalStep - _firstStep;
            return done <= 0 ? TimeSpan.Zero : _clock.Elapsed * ((double)(s.TotalSteps - s.GlobalStep) / done);
        }

        public static string Format(TimeSpan t) => t.ToString(t.TotalHours >= 1 ? @"h\:mm\:ss" : @"m\:ss", CultureInfo.InvariantCulture);
    }

    /// <summary>Shows what a task keeps in its state: an epoch's images/s, or the run's remaining time.</summary>
    private sealed class StatsColumn : ProgressColumn
    {
        public const string Rate = "images-per-second";
        public const string Remaining = "remaining-seconds";

        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
        {
            double rate = task.State.Get<double>(Rate), remaining = task.State.Get<double>(Remaining);
            return new Text(rate > 0 ? string.Create(CultureInfo.InvariantCulture, $"{rate,6:F0} images/s")
                : $"ETA {Eta.Format(TimeSpan.FromSeconds(remaining))}");
        }
    }
}
