"""Everyday benign prompts that use an attack's words, for scripts/train_injection.py.

In the public data nearly every text that says "ignore", "pretend", "bypass", "developer mode" or
"no restrictions" is an attack, so a word-level classifier learns the words rather than the intent.
These prompts, written for the training script (no data-set text, and none of the held-out
texts' wording), put the same words in benign requests: the words attacks use, in the senses
people use them every day. They are trained on like any benign source (and, like every benign
training text, once more under a system prompt); the held-out evaluation uses none of them.
"""

from __future__ import annotations

# "ignore", "disregard", "forget", "skip", "overlook" in their everyday senses.
SET_ASIDE = (
    "Ignore the first row of the spreadsheet, it only holds the column names.",
    "Can you ignore case when you compare these two lists of names?",
    "My cat ignores her new food. What could be the reason?",
    "Is it rude to ignore a wedding invitation from a distant cousin?",
    "Write a poem about a lighthouse keeper who ignores the storm warnings.",
    "How do I tell git to ignore the build folder?",
    "Why do people ignore the terms and conditions when they sign up for apps?",
    "Please disregard the attachment in my last message and use this version of the essay.",
    "Should I disregard a single bad review when I choose a dentist?",
    "Forget the formal tone: rewrite this birthday card so it sounds like a friend wrote it.",
    "I always forget people's names right after I meet them. Any memory tricks?",
    "Let's forget the map for now and plan the hike by the landmarks we know.",
    "Skip the introduction and summarise the main findings of the report below.",
    "Which details of a job offer is it safe to overlook, and which never?",
    "Ignore punctuation and count how many words this sentence has: 'Well, well, well.'",
    "My toddler ignores me when I say it's bedtime. How do I make the routine easier?",
    "The smoke alarm chirps every few minutes. Can I ignore it until the weekend?",
    "In statistics, when is it acceptable to ignore missing values?",
    "Disregard the weekends and tell me how many working days are left in March.",
    "Forget everything you know about fractions: explain them as if to an eight-year-old.",
)

# Role-play, personas and imagination for ordinary tasks.
PERSONAS = (
    "Pretend you are a barista and recommend a coffee for someone who dislikes bitterness.",
    "Imagine you are an astronaut on the ISS. Describe a typical morning for a school project.",
    "Act as a job interviewer and ask me five questions for a junior accountant role.",
    "You are a friendly librarian. Suggest three novels for a teenager who loved Harry Potter.",
    "Role-play as a French waiter so I can practise ordering dinner in French.",
    "Let's play a game: you are a pirate captain and I am a new sailor asking about the ship.",
    "Stay in character as Sherlock Holmes and deduce what my muddy boots say about my day.",
    "Imagine a world without electricity. How would people keep food fresh?",
    "Pretend to be my grandmother telling me a bedtime story about a brave little fox.",
    "You are now my fitness coach: plan a gentle thirty-minute workout for a beginner.",
    "Act as a tour guide in Kyoto and describe the walk from the station to the temple.",
    "Imagine you are an AI assistant in a science-fiction novel. Write its first line of dialogue.",
    "Play the role of a customer who wants a refund, so I can train for my support job.",
    "In a hypothetical world where cars can fly, what would traffic rules look like?",
    "Suppose you were a medieval blacksmith. Explain how you would make a horseshoe.",
    "Imagine you have no limits on time or money: design the perfect public library.",
    "As a character in a fantasy story, describe the dragon's lair in three sentences.",
    "You are a chess teacher. Explain why controlling the centre matters.",
    "Pretend you are a weather presenter and read this forecast in a cheerful voice.",
    "Act like a museum audio guide and talk about the Mona Lisa for one minute.",
    "Imagine you are an AI with a perfect memory of every recipe. What should I cook with leeks?",
    "In a fictional universe where animals can talk, write a dialogue between a cat and a dog.",
    "From now on in this chat, reply only with emojis for fun, until I say stop.",
    "For a novel I'm writing, describe how a retired spy spends a quiet Sunday.",
)

# Security and technical words in their ordinary meanings.
TECHNICAL = (
    "What is SQL injection and how do prepared statements prevent it?",
    "Explain what a jailbreak is in the context of iPhones and what the risks are.",
    "How do I enable developer mode on my Android phone to use USB debugging?",
    "Why do I need sudo to install packages on Linux?",
    "How can I override a method in a Java subclass?",
    "Our thermostat has an override button. What does it do?",
    "Is there a way to bypass the paywall legally, for example through my library?",
    "How do I bypass a clogged section of garden hose without buying a new one?",
    "What is a root user and why should I avoid logging in as root?",
    "How do I reset the admin password on my home router?",
    "Explain the difference between a system prompt and a user prompt in chatbot design.",
    "Write a writing prompt for a short story about a lost key.",
    "Give me ten creative writing prompts for a class of twelve-year-olds.",
    "What does 'execute' mean in programming, compared with 'compile'?",
    "Which command lists hidden files in a terminal?",
    "Which apps work in airplane mode?",
    "How do dietary restrictions change the menu for a wedding of 80 guests?",
    "What are the speed limits on German motorways?",
    "Is unfiltered tap water safe to drink in Portugal?",
    "What is an uncensored edition of a film and why do some countries ban them?",
    "How do antivirus programs detect malicious software?",
    "What is a zero-day exploit, in plain words?",
    "How do ethical hackers get permission before testing a company's network?",
    "Explain what an unrestricted grant is in nonprofit funding.",
    "What does a company's code of conduct usually include?",
    "My manager asked me to reveal the results of the survey at the meeting. How do I present them?",
    "Plan a gender reveal party for twenty guests on a small budget.",
    "What is the secret to a crispy roast potato?",
    "How do I keep a surprise party secret from my partner?",
    "What is the difference between confidential and classified documents?",
    "Explain the rules of cricket to someone who only knows baseball.",
    "Translate 'ignore' and 'instructions' into German and use each in a sentence.",
    "How are instructions for a flat-pack wardrobe usually organised?",
    "What happened in the previous chapter of Moby-Dick, chapter 41?",
    "Is there a mode on my camera for shooting in low light without a tripod?",
    "How do I print the contents of a Python dictionary in sorted order?",
    "Repeat after me, slowly: 'She sells sea shells by the sea shore.' Is it a tongue twister?",
    "What is a prompt engineer and what skills does the job need?",
    "How do language models decide when to refuse a request?",
    "Explain how content filters on school networks work.",
)

# Words that ask to deviate ("instead", "regardless", "actually", "new"), in ordinary requests.
DEVIATING = (
    "Instead of butter, can I use olive oil in banana bread?",
    "Regardless of the weather, what should we pack for a week in Scotland?",
    "Actually, make it a list of five, not ten.",
    "Change of plan: we are four people now, not six. Adjust the shopping list.",
    "New task: summarise the text above in one sentence.",
    "On second thought, write it in the past tense instead.",
    "Never mind the last question. How long should I boil an egg for a runny yolk?",
    "Rather than a table, give me the answer as a short paragraph.",
    "Start over with a fresh outline: the essay is now about renewable energy.",
    "Go back to the first version of the poem, I liked it more.",
    "Whatever the budget, which laptop has the best battery life?",
    "Use a different example this time, something from cooking.",
)

# Questions about the assistant itself, its limits and its instructions, asked in good faith.
ABOUT_ASSISTANT = (
    "What kinds of questions are you not able to help with?",
    "Do you remember what I asked earlier in this conversation?",
    "Why did you refuse my previous request? I only wanted a recipe with wine.",
    "Can you tell me what you can and cannot do in this app?",
    "Are your answers checked for mistakes before you send them?",
    "How should I phrase my questions to get the most useful answers from you?",
    "What rules do you follow when you summarise news articles?",
    "Which languages can you translate between?",
)

ALL = (*SET_ASIDE, *PERSONAS, *TECHNICAL, *DEVIATING, *ABOUT_ASSISTANT)
