using Crate.Training;

namespace Crate.Training.Tests;

/// <summary>
/// Runs before any test touches libtorch: test runs share two cores with other work, where spinning OpenMP
/// threads slow libtorch several-fold (see <see cref="ProcessTuning"/>). Not <see cref="ProcessTuning.KeepFreedMemory"/>:
/// these tests train segmentation heads, whose Conv2d backward it makes unrepeatable.
/// </summary>
[SetUpFixture]
public sealed class ProcessTuningSetup
{
    [OneTimeSetUp]
    public void Apply() => ProcessTuning.PreferPassiveOpenMp();
}
